#!/usr/bin/env node
// The package's `canvascast` command (`npx canvascast --help`): the server CLI, dist/server/main.js.
// A separate file because tsc keeps no shebang that the server's source does not have.
import "../dist/server/main.js";
