import { runAppendBench } from './append.js';
import { runE2eBench } from './e2e.js';
import { runReplayBench } from './replay.js';
import { runSseBench } from './sse.js';
import { printTable } from './support.js';

// One table of every figure, each beside the baseline measured in this same run.
const rows = [...(await runAppendBench()), ...(await runReplayBench()), ...(await runE2eBench()), ...(await runSseBench())];
printTable('npm run bench', rows);
process.exit(0);
