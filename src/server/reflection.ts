/**
 * gRPC server reflection (v1 and v1alpha), so `grpcurl` and `buf curl` can list and call every RPC
 * without a local schema. Served from the descriptors protoc-gen-es embedded in gen/: the file that
 * declares a symbol is returned with all its transitive imports.
 */
import { create, type DescFile, type DescMessage, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** Most requests one reflection stream may send: a client lists and resolves a schema, then stops. */
export const MAX_REFLECTION_REQUESTS_PER_STREAM = 10_000;

interface Index {
  files: Map<string, DescFile>;
  symbols: Map<string, DescFile>;
  extensions: Map<string, Map<number, DescFile>>;
  services: string[];
}

function indexOf(services: readonly DescService[]): Index {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const extensions = new Map<string, Map<number, DescFile>>();
  const addMessage = (file: DescFile, m: DescMessage) => {
    symbols.set(m.typeName, file);
    for (const n of m.nestedMessages) addMessage(file, n);
    for (const e of m.nestedEnums) symbols.set(e.typeName, file);
    for (const x of m.nestedExtensions) {
      symbols.set(x.typeName, file);
      addExtension(file, x.extendee.typeName, x.number);
    }
  };
  const addExtension = (file: DescFile, extendee: string, number: number) => {
    let byNumber = extensions.get(extendee);
    if (!byNumber) {
      byNumber = new Map();
      extensions.set(extendee, byNumber);
    }
    byNumber.set(number, file);
  };
  const addFile = (file: DescFile) => {
    if (files.has(file.name + ".proto")) return;
    files.set(file.name + ".proto", file);
    for (const m of file.messages) addMessage(file, m);
    for (const e of file.enums) symbols.set(e.typeName, file);
    for (const x of file.extensions) {
      symbols.set(x.typeName, file);
      addExtension(file, x.extendee.typeName, x.number);
    }
    for (const s of file.services) {
      symbols.set(s.typeName, file);
      for (const m of s.methods) symbols.set(`${s.typeName}.${m.name}`, file);
    }
    for (const d of file.dependencies) addFile(d);
  };
  for (const s of services) addFile(s.file);
  return { files, symbols, extensions, services: services.map((s) => s.typeName) };
}

/** The file and its transitive imports, each serialised once, the file itself first. */
function withDependencies(file: DescFile): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    out.push(toBinary(FileDescriptorProtoSchema, create(FileDescriptorProtoSchema, f.proto)));
    f.dependencies.forEach(visit);
  };
  visit(file);
  return out;
}

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

function answer(index: Index, req: Request): Answer {
  const notFound = (what: string): Answer => ({ case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` } });
  const m = req.messageRequest;
  switch (m.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename": {
      const file = index.files.get(m.value);
      return file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } } : notFound(`file ${m.value}`);
    }
    case "fileContainingSymbol": {
      const file = index.symbols.get(m.value.replace(/^\./, ""));
      return file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } } : notFound(`symbol ${m.value}`);
    }
    case "fileContainingExtension": {
      const file = index.extensions.get(m.value.containingType)?.get(m.value.extensionNumber);
      return file
        ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } }
        : notFound(`extension ${m.value.extensionNumber} of ${m.value.containingType}`);
    }
    case "allExtensionNumbersOfType": {
      if (!index.symbols.has(m.value)) return notFound(`type ${m.value}`);
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: m.value, extensionNumber: [...(index.extensions.get(m.value)?.keys() ?? [])] } };
    }
    default:
      return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "unsupported reflection request" } };
  }
}

/** Registers reflection v1 and v1alpha describing `services` (and the reflection services themselves). */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const index = indexOf([...services, v1.ServerReflection, v1alpha.ServerReflection]);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      let count = 0;
      for await (const req of requests) {
        if (++count > MAX_REFLECTION_REQUESTS_PER_STREAM) return;
        yield create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: answer(index, req) });
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      let count = 0;
      for await (const req of requests) {
        if (++count > MAX_REFLECTION_REQUESTS_PER_STREAM) return;
        yield create(v1alpha.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: answer(index, req) });
      }
    },
  });
}
