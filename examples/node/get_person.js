#!/usr/bin/env node
// An agency IS, written in Node.js, calling the population registry through its
// own Zhol gateway.
//
// Everything it needs: the provider's .proto (protos/zhol/population/v1), the
// client subsystem it calls as, and its own gateway's IS address. It generates
// nothing from Zhol's Python code: the IS speaks plain gRPC to its gateway and
// names itself with zhol-* metadata (the README's zhol-* table); the gateways do
// the signing, verifying and logging.
//
//     npm ci
//     node get_person.js [--client SUBSYSTEM] [--gateway HOST:PORT] [--iin IIN]
//                        [--federation FEDERATION_JSON]
//
// --client defaults to the demo's KZ/GOV/MLSPP/pension. --gateway is the IS
// address of the gateway serving --client; without it, that address is looked up
// in federation.json (--federation, default ../../demo-data/federation.json next
// to this file), which lists only the demo's gateways. Without --iin the first
// citizen ListPersons returns is looked up.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const DEFAULT_CLIENT = "KZ/GOV/MLSPP/pension";
const USER_ID = "EE:officer-17";
const PURPOSE = "pension application 2026-0042";
const DEADLINE_MS = 5000;

const PROTOS = path.resolve(__dirname, "..", "..", "protos");
const POPULATION_PROTO = path.join(PROTOS, "zhol", "population", "v1", "population.proto");
const DEFAULT_FEDERATION = path.resolve(__dirname, "..", "..", "demo-data", "federation.json");

// The IS address of the gateway that serves the client subsystem, from federation.json.
function gatewayAddress(federationPath, client) {
  const federation = JSON.parse(fs.readFileSync(federationPath, "utf8"));
  const subsystem = federation.subsystems.find((s) => s.id === client);
  if (!subsystem) {
    throw new Error(`${federationPath}: no subsystem ${client} (give its gateway with --gateway)`);
  }
  const gateway = federation.gateways.find((g) => g.id === subsystem.gateway);
  if (!gateway) throw new Error(`${federationPath}: no gateway ${subsystem.gateway}`);
  return gateway.is_address;
}

function loadPopulationRegistry() {
  const definition = protoLoader.loadSync(POPULATION_PROTO, {
    includeDirs: [PROTOS],
    keepCase: true, // field names exactly as in the .proto (page_size, birth_date)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).zhol.population.v1.PopulationRegistry;
}

function busMetadata(client, dataSubject) {
  const md = new grpc.Metadata();
  md.set("zhol-client", client);
  md.set("zhol-user-id", USER_ID);
  md.set("zhol-purpose", PURPOSE);
  if (dataSubject) md.set("zhol-data-subject", dataSubject);
  return md;
}

// A unary call as a promise of {response, trailers}. grpc-js hands the trailing
// metadata to the 'status' event, which fires after the callback, so wait for both.
function call(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    let response;
    let answered = false;
    const deadline = new Date(Date.now() + DEADLINE_MS);
    const pending = client[method](request, metadata, { deadline }, (err, value) => {
      if (err) {
        reject(err); // err.metadata holds the trailers
        return;
      }
      response = value;
      answered = true;
    });
    pending.on("status", (status) => {
      if (answered) resolve({ response, trailers: status.metadata });
    });
  });
}

function first(metadata, key) {
  const values = metadata ? metadata.get(key) : [];
  return values.length > 0 ? String(values[0]) : "-";
}

function statusName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) || String(code);
}

const OPTIONS = ["--client", "--gateway", "--federation", "--iin"];

// Same options as examples/python/get_person.py; bare positional arguments
// (FEDERATION_JSON, then IIN) work too.
function parseArgs(argv) {
  const options = { client: DEFAULT_CLIENT, gateway: undefined, federation: undefined, iin: undefined };
  const positional = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const eq = arg.indexOf("=");
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    if (OPTIONS.includes(flag)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[(i += 1)];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      options[flag.slice(2)] = value;
    } else if (arg.startsWith("--")) {
      throw new Error(`unknown option ${arg} (use ${OPTIONS.join(", ")})`);
    } else {
      positional.push(arg);
    }
  }
  options.federation = options.federation || positional[0];
  options.iin = options.iin || positional[1];
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const federationPath = options.federation ? path.resolve(options.federation) : DEFAULT_FEDERATION;
  const client = options.client;
  const address = options.gateway || gatewayAddress(federationPath, client);
  const PopulationRegistry = loadPopulationRegistry();
  // Plaintext is for a development gateway on loopback; in production the IS
  // connection is TLS or mutual TLS (grpc.credentials.createSsl(...)).
  const registry = new PopulationRegistry(address, grpc.credentials.createInsecure());
  try {
    let iin = options.iin;
    if (!iin) {
      const { response } = await call(registry, "ListPersons", { page_size: 1 }, busMetadata(client));
      if (response.persons.length === 0) throw new Error("the population registry is empty");
      iin = response.persons[0].iin;
    }
    const { response: person, trailers } = await call(
      registry,
      "GetPerson",
      { iin },
      busMetadata(client, iin),
    );
    console.log(`message id: ${first(trailers, "zhol-message-id")}`);
    console.log(JSON.stringify(person, null, 2));
    return 0;
  } catch (err) {
    if (err.code === undefined) throw err; // not a gRPC status
    // zhol-error present: the bus refused the call (a Zhol error code, and
    // zhol-error-id names the record in the gateway's log). zhol-error absent:
    // the bus delivered the call and the provider itself answered with this
    // status (e.g. NOT_FOUND for an unknown IIN), as with X-Road's X-Road-Error.
    console.error(`${statusName(err.code)}: ${err.details}`);
    console.error(`zhol-error: ${first(err.metadata, "zhol-error")}`);
    console.error(`zhol-error-id: ${first(err.metadata, "zhol-error-id")}`);
    return 1;
  } finally {
    registry.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err.message || err);
    process.exit(1);
  },
);
