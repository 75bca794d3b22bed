import { runAppendBench } from './append.js';
import { runE2eBenchWithResult } from './e2e.js';
import { runReplayBenchWithResult } from './replay.js';
import { runSseBench } from './sse.js';
import { printTable, resultLine } from './support.js';

// One table of every figure, each beside the baseline measured in this same run; then the RESULT
// lines of bench:replay and bench:e2e (in that order), as those benches print them.
const append = await runAppendBench();
const replay = await runReplayBenchWithResult();
const e2e = await runE2eBenchWithResult();
const sse = await runSseBench();
printTable('npm run bench', [...append, ...replay.rows, ...e2e.rows, ...sse]);
console.log(resultLine(replay.result));
console.log(resultLine(e2e.result));
process.exit(0);
