#!/usr/bin/env node
// An agency IS, written in Node.js, calling the population registry through its
// own Zhol gateway.
//
// Everything it needs: the provider's .proto (protos/zhol/population/v1) and
// federation.json. It generates nothing from Zhol's Python code: the IS speaks
// plain gRPC to the pension gateway's IS address and names itself with zhol-*
// metadata (the README's zhol-* table); the gateways do the signing, verifying and
// logging.
//
//     npm ci
//     node get_person.js [FEDERATION_JSON] [IIN]
//
// FEDERATION_JSON defaults to ../../demo-data/federation.json (next to this
// file); without IIN the first citizen ListPersons returns is looked up.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const CLIENT = "KZ/GOV/MLSPP/pension";
const USER_ID = "EE:officer-17";
const PURPOSE = "pension application 2026-0042";
const DEADLINE_MS = 5000;

const PROTOS = path.resolve(__dirname, "..", "..", "protos");
const POPULATION_PROTO = path.join(PROTOS, "zhol", "population", "v1", "population.proto");
const DEFAULT_FEDERATION = path.resolve(__dirname, "..", "..", "demo-data", "federation.json");

// The IS address of the gateway that serves our subsystem.
function gatewayAddress(federationPath) {
  const federation = JSON.parse(fs.readFileSync(federationPath, "utf8"));
  const subsystem = federation.subsystems.find((s) => s.id === CLIENT);
  if (!subsystem) throw new Error(`${federationPath}: no subsystem ${CLIENT}`);
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

function busMetadata(dataSubject) {
  const md = new grpc.Metadata();
  md.set("zhol-client", CLIENT);
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

// Same options as examples/python/get_person.py (--federation PATH, --iin IIN);
// bare positional arguments (PATH, then IIN) work too.
function parseArgs(argv) {
  const options = { federation: undefined, iin: undefined };
  const positional = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const [flag, inline] = arg.split("=", 2);
    if (flag === "--federation" || flag === "--iin") {
      const value = inline !== undefined ? inline : argv[(i += 1)];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      options[flag.slice(2)] = value;
    } else if (arg.startsWith("--")) {
      throw new Error(`unknown option ${arg} (use --federation PATH and --iin IIN)`);
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
  const address = gatewayAddress(federationPath);
  const PopulationRegistry = loadPopulationRegistry();
  // Plaintext is for a development gateway on loopback; in production the IS
  // connection is TLS or mutual TLS (grpc.credentials.createSsl(...)).
  const client = new PopulationRegistry(address, grpc.credentials.createInsecure());
  try {
    let iin = options.iin;
    if (!iin) {
      const { response } = await call(client, "ListPersons", { page_size: 1 }, busMetadata());
      if (response.persons.length === 0) throw new Error("the population registry is empty");
      iin = response.persons[0].iin;
    }
    const { response: person, trailers } = await call(
      client,
      "GetPerson",
      { iin },
      busMetadata(iin),
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
    client.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err.message || err);
    process.exit(1);
  },
);
