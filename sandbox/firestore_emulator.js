#!/usr/bin/env node
/*
 * Local Firestore emulator for tests, benchmarks and the demo (ARCHITECTURE.md, "The sandbox").
 *
 * Usage: node sandbox/firestore_emulator.js [PORT] [--watch-stdin]
 *   PORT           TCP port on 127.0.0.1; 0 (the default) lets the OS pick a free one.
 *   --watch-stdin  exit when stdin closes, so an emulator started by a process that dies without
 *                  cleaning up (a killed pytest) does not linger. Off by default, because a
 *                  launcher that hands us /dev/null as stdin would otherwise stop us at once.
 *
 * Prints exactly one line "LISTENING 127.0.0.1:<port>" on stdout once it accepts connections;
 * everything else goes to stderr. sandbox/firestore_emulator.py waits for that line.
 *
 * Why not FirestoreServer.start(port): it binds 0.0.0.0, which would expose an unauthenticated
 * database to the network. We bind the emulator's own grpc Server object to loopback instead.
 *
 * Why @grpc/grpc-js is resolved from the emulator package's directory: the ServerCredentials we
 * pass must come from the very copy of grpc-js that created the emulator's Server (two copies do
 * not recognise each other's objects). If npm did not hoist it, it lives under the emulator's
 * own node_modules.
 *
 * Why only the package's main entry is loaded: requiring its dist/* files separately gives a
 * second copy of its error classes, and then its `instanceof FirestoreEmulatorError` check fails:
 * a create() conflict comes back as UNKNOWN instead of ALREADY_EXISTS.
 */
"use strict";

const path = require("node:path");

function parseArgs(argv) {
  let port = 0;
  let watchStdin = false;
  for (const arg of argv) {
    if (arg === "--watch-stdin") {
      watchStdin = true;
    } else if (/^\d+$/.test(arg)) {
      port = Number(arg);
    } else {
      console.error(`usage: node firestore_emulator.js [PORT] [--watch-stdin] (got ${arg})`);
      process.exit(2);
    }
  }
  if (port < 0 || port > 65535) {
    console.error(`port out of range: ${port}`);
    process.exit(2);
  }
  return { port, watchStdin };
}

function loadEmulator() {
  const serverPackageDir = path.dirname(
    require.resolve("@firestore-emulator/server/package.json"),
  );
  const grpcEntry = require.resolve("@grpc/grpc-js", { paths: [serverPackageDir] });
  const { ServerCredentials } = require(grpcEntry);
  const { FirestoreServer } = require("@firestore-emulator/server");
  return { ServerCredentials, FirestoreServer };
}

function main() {
  const { port, watchStdin } = parseArgs(process.argv.slice(2));
  const { ServerCredentials, FirestoreServer } = loadEmulator();
  const emulator = new FirestoreServer();

  const stop = (code) => {
    try {
      emulator.stop();
    } finally {
      process.exit(code);
    }
  };
  process.on("SIGTERM", () => stop(0));
  process.on("SIGINT", () => stop(0));
  // An unimplemented RPC (ListDocuments, BatchWrite, ...) throws inside the emulator. Report it
  // and keep serving: one bad call must not take down every other test of the session.
  process.on("uncaughtException", (err) => {
    console.error(`firestore emulator: uncaught exception: ${err && err.stack ? err.stack : err}`);
  });

  emulator.server.bindAsync(
    `127.0.0.1:${port}`,
    ServerCredentials.createInsecure(),
    (err, boundPort) => {
      if (err) {
        console.error(`firestore emulator: cannot bind 127.0.0.1:${port}: ${err.message}`);
        process.exit(1);
      }
      // grpc-js >= 1.10 (the emulator pins 1.14) serves as soon as the port is bound.
      process.stdout.write(`LISTENING 127.0.0.1:${boundPort}\n`);
    },
  );

  if (watchStdin) {
    process.stdin.on("end", () => stop(0));
    process.stdin.on("error", () => stop(0));
    process.stdin.resume();
  }
}

main();
