/** Prints the README's configuration table from src/config.ts. */
import { configurationTable } from "../src/config.js";

console.log(configurationTable());
