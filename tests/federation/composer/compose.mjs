// Compose Federation 2 subgraphs with @theguild/federation-composition (MIT).
// Usage: node compose.mjs <dir holding node_modules> <name>=<sdl file>...
// Prints {"supergraph": "..."} and exits 0, or {"errors": ["..."]} and exits 1.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [installDir, ...subgraphs] = process.argv.slice(2);
if (!installDir || subgraphs.length === 0) {
  console.error("usage: node compose.mjs <dir holding node_modules> <name>=<sdl file>...");
  process.exit(2);
}
const require = createRequire(join(installDir, "package.json"));
const { parse } = require("graphql");
const { composeServices } = require("@theguild/federation-composition");

const services = subgraphs.map((argument) => {
  const [name, file] = argument.split("=", 2);
  return { name, typeDefs: parse(readFileSync(file, "utf8")) };
});
const result = composeServices(services);
if (result.errors) {
  console.log(JSON.stringify({ errors: result.errors.map((error) => error.message) }));
  process.exit(1);
}
console.log(JSON.stringify({ supergraph: result.supergraphSdl }));
