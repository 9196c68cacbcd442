import { describe, expect, it } from 'vitest';
import { isKnownSdkRace } from '../../src/common/sdk-races.js';

const race = Object.assign(new Error('Cannot pipe to a closed or destroyed stream'), {
  code: 'ERR_STREAM_UNABLE_TO_PIPE',
  stack: 'Error: Cannot pipe to a closed or destroyed stream\n    at pipelineImpl (node:internal/streams/pipeline:264:15)\n    at PassThrough.<anonymous> (/usr/lib/pgark/node_modules/teeny-request/build/src/index.js:178:43)',
});

describe('isKnownSdkRace', () => {
  it.each([
    ['the GCS SDK pipe race', race, true],
    ['the same code from pgark code', Object.assign(new Error('x'), { code: 'ERR_STREAM_UNABLE_TO_PIPE', stack: 'Error: x\n    at /usr/lib/pgark/dist/src/repo/object-stream.js:1:1' }), false],
    ['another error from teeny-request', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', stack: 'Error\n    at teeny-request/build/src/index.js:1:1' }), false],
    ['a string', 'ERR_STREAM_UNABLE_TO_PIPE teeny-request', false],
    ['null', null, false],
    ['undefined', undefined, false],
  ])('%s', (_name, err, known) => {
    expect(isKnownSdkRace(err)).toBe(known);
  });
});
