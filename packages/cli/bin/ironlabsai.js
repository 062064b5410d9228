#!/usr/bin/env node
// The `ironlabsai` command: the built CLI (run `pnpm build` first, or use `pnpm cli` in the repo).
import "../dist/bin.js"
