#!/usr/bin/env node
// Calling storagegw from Node.js with @grpc/grpc-js and @grpc/proto-loader, straight from
// the .proto files (no generated code): a streaming Put with a CRC32C on every chunk and
// whole-object checksums, a Head, a streaming Get that checks every chunk, a ranged Get,
// and the ErrorInfo of a failed call.
//
//   npm ci --prefix clients/node          (or `make setup`)
//   node clients/node/example.js [TARGET [FILE [KEY]]]
//
// TARGET: host:port of the gateway (default $STORAGEGW_TARGET, else 127.0.0.1:50051).
// FILE: the bytes to store (default: 3 MiB of random bytes). KEY: where (default
// examples/node/FILE's name, or examples/node/random.bin).
// TLS: $STORAGEGW_TLS_CA names the PEM roots that vouch for the gateway; $STORAGEGW_TOKEN
// is sent as "authorization: Bearer ..." (only over TLS: grpc-js refuses call credentials
// on a plaintext channel), with the system's roots when no CA file is given.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');
const CHUNK = 1024 * 1024; // the gateway takes at most 2 MiB of data per Put message
const DEADLINE_MS = 120_000;

// The loader options that matter:
// - keepCase: true keeps the .proto's snake_case field names. Without it the loader
//   renames them to camelCase (readOffset, finishWrite, contentType...), and a request
//   written with the names of the contract ({read_offset: 10}) carries fields the message
//   does not have: protobufjs drops them without a word, so the Get reads from byte 0,
//   the Put never sets finish_write, and so on. Responses come back snake_case as well.
// - longs: String: int64 fields (size, generation, read_offset) arrive as decimal strings
//   rather than Long objects, and lose no precision past 2^53 as Numbers would.
// - enums: String: enum fields arrive as their names (SIGNED_METHOD_GET), not numbers.
// - defaults: true: fields left at their default (0, "", false) are still present on
//   responses, so `object.generation` is "0" rather than undefined; a proto3 `optional`
//   field (crc32c, size, read_limit) is present only when it was sent.
// - oneofs: true: a set oneof also names its member (first_message: 'spec').
// - includeDirs: where the imports are found. The contract imports only the protobuf
//   well-known types (google/protobuf/*.proto), which the loader ships; proto/ holds the
//   rest, google.rpc.Status's and ErrorInfo's wire form included (status.proto).
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const definition = protoLoader.loadSync('storagegw/v1/storage.proto', LOADER_OPTIONS);
const { StorageService } = grpc.loadPackageDefinition(definition).storagegw.v1;

// The status details trailer is decoded with protobufjs (what the loader itself uses;
// it ships google/protobuf/any.proto too) from the same proto/ directory.
const STATUS_PROTO = path.join(PROTO_DIR, 'storagegw', 'v1', 'status.proto');
const statusRoot = new protobuf.Root().loadSync(STATUS_PROTO, { keepCase: true });
const RpcStatus = statusRoot.lookupType('storagegw.v1.RpcStatus');
const RpcErrorInfo = statusRoot.lookupType('storagegw.v1.RpcErrorInfo');
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), one table lookup per byte.
// crc32c(more, crc32c(first)) === crc32c(first + more).
const CRC32C_TABLE = new Uint32Array(256).map((_, byte) => {
  let crc = byte;
  for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  return crc;
});

function crc32c(bytes, crc = 0) {
  let value = ~crc;
  for (let i = 0; i < bytes.length; i++) {
    value = CRC32C_TABLE[(value ^ bytes[i]) & 0xff] ^ (value >>> 8);
  }
  return ~value >>> 0;
}

const hex32 = (value) => value.toString(16).padStart(8, '0');

// The google.rpc.ErrorInfo the gateway puts in every error's grpc-status-details-bin
// trailer: {reason, domain, metadata}, or null when the trailer is missing (an error
// raised before the call reached the gateway, such as an unreachable address).
function errorInfo(error) {
  const [trailer] = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  if (!trailer) return null;
  const status = RpcStatus.decode(trailer);
  const detail = status.details.find((any) => any.type_url === ERROR_INFO_TYPE);
  if (!detail) return null;
  return RpcErrorInfo.toObject(RpcErrorInfo.decode(detail.value), { defaults: true });
}

const statusName = (code) => Object.keys(grpc.status).find((name) => grpc.status[name] === code);

function options() {
  return { deadline: Date.now() + DEADLINE_MS };
}

function connect(target) {
  const token = process.env.STORAGEGW_TOKEN;
  const ca = process.env.STORAGEGW_TLS_CA;
  if (!token && !ca) return new StorageService(target, grpc.credentials.createInsecure());
  let credentials = grpc.credentials.createSsl(ca ? fs.readFileSync(ca) : null);
  if (token) {
    const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${token}`);
      callback(null, metadata);
    });
    credentials = grpc.credentials.combineChannelCredentials(credentials, bearer);
  }
  return new StorageService(target, credentials);
}

// Streams `chunks` (Buffers of at most 2 MiB) into KEY: the spec first, then each chunk
// with its CRC32C, then the whole object's CRC32C and SHA-256 with finish_write. The
// gateway stores the object only if every one of them matches and `size` bytes came.
function put(client, key, size, chunks) {
  return new Promise((resolve, reject) => {
    const call = client.Put(options(), (error, response) =>
      error ? reject(error) : resolve(response),
    );
    (async () => {
      const send = (message) =>
        call.write(message) ? undefined : new Promise((drained) => call.once('drain', drained));
      await send({
        spec: {
          key,
          content_type: 'application/octet-stream',
          metadata: { 'written-by': 'clients/node/example.js' },
          size: String(size),
          // Also asks a bucket that computes SHA-256 only on request to check ours.
          compute_sha256: true,
        },
      });
      let crc = 0;
      let offset = 0;
      const sha256 = crypto.createHash('sha256');
      for await (const content of chunks) {
        await send({ write_offset: String(offset), chunk: { content, crc32c: crc32c(content) } });
        crc = crc32c(content, crc);
        sha256.update(content);
        offset += content.length;
      }
      call.end({
        write_offset: String(offset),
        object_checksums: { crc32c: crc, sha256: sha256.digest() },
        finish_write: true,
      });
    })().catch((error) => {
      call.cancel();
      reject(error);
    });
  });
}

// Reads KEY (or a range of it) and returns {object, range, data, chunks}, having checked
// every chunk against its CRC32C and, for a whole object, the object's CRC32C.
async function get(client, request) {
  const pieces = [];
  let object = null;
  let range = null;
  let crc = 0;
  for await (const message of client.Get(request, options())) {
    if (message.object) ({ object, content_range: range } = message);
    const { content, crc32c: expected } = message.chunk;
    const actual = crc32c(content);
    if (actual !== expected) {
      const sent = expected === undefined ? 'none' : hex32(expected);
      throw new Error(`chunk ${pieces.length}: crc32c ${hex32(actual)}, the gateway sent ${sent}`);
    }
    crc = crc32c(content, crc);
    pieces.push(content);
  }
  if (!range) throw new Error('the Get stream ended before its first message');
  const data = Buffer.concat(pieces);
  const whole = Number(range.start) === 0 && Number(range.end) === Number(range.complete_length);
  if (whole && object.crc32c !== undefined && object.crc32c !== crc) {
    throw new Error(`object crc32c ${hex32(crc)}, the gateway says ${hex32(object.crc32c)}`);
  }
  return { object, range, data, chunks: pieces.length };
}

function head(client, key) {
  return new Promise((resolve, reject) => {
    client.Head({ key }, options(), (error, response) =>
      error ? reject(error) : resolve(response.object),
    );
  });
}

async function* fileChunks(file) {
  yield* fs.createReadStream(file, { highWaterMark: CHUNK });
}

function* randomChunks(size) {
  for (let offset = 0; offset < size; offset += CHUNK) {
    yield crypto.randomBytes(Math.min(CHUNK, size - offset));
  }
}

const sha256Hex = (data) => crypto.createHash('sha256').update(data).digest('hex');

async function main() {
  const [target = process.env.STORAGEGW_TARGET || '127.0.0.1:50051', file] =
    process.argv.slice(2);
  const key = process.argv[4] || `examples/node/${file ? path.basename(file) : 'random.bin'}`;
  const client = connect(target);
  try {
    const size = file ? fs.statSync(file).size : 3 * CHUNK;
    const stored = await put(client, key, size, file ? fileChunks(file) : randomChunks(size));
    const info = stored.object;
    console.log(
      `put ${info.key}: ${info.size} bytes, crc32c ${hex32(info.crc32c)}, ` +
        `sha256 ${info.sha256.toString('hex')}, generation ${info.generation}`,
    );

    const described = await head(client, key);
    console.log(
      `head ${described.key}: ${described.size} bytes, ${described.content_type}, ` +
        `metadata ${JSON.stringify(described.metadata)}`,
    );

    const whole = await get(client, { key });
    console.log(
      `get ${key}: ${whole.data.length} bytes in ${whole.chunks} chunk(s), ` +
        `every crc32c checked, sha256 ${sha256Hex(whole.data)}`,
    );

    // A range from a third of the way in: read_offset and read_limit reach the gateway
    // only thanks to keepCase (without it this Get would return the whole object).
    const offset = Math.floor(size / 3);
    const part = await get(client, { key, read_offset: String(offset), read_limit: '5000' });
    console.log(
      `get ${key} [${part.range.start}, ${part.range.end}) of ${part.range.complete_length}: ` +
        `${part.data.length} bytes, sha256 ${sha256Hex(part.data)}`,
    );

    const missing = `${key}.missing`;
    try {
      await head(client, missing);
      throw new Error(`${missing} exists`);
    } catch (error) {
      const info = errorInfo(error);
      if (!info) throw error;
      console.log(
        `head ${missing}: ${statusName(error.code)}, reason ${info.reason}, ` +
          `domain ${info.domain}, metadata ${JSON.stringify(info.metadata)}`,
      );
    }
  } finally {
    client.close();
  }
}

main().catch((error) => {
  const info = errorInfo(error);
  const reason = info ? ` (${info.reason} ${JSON.stringify(info.metadata)})` : '';
  console.error(`example.js: ${error.details || error.message}${reason}`);
  process.exitCode = 1;
});
