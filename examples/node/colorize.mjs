#!/usr/bin/env node
// Colorize one picture with a labcolor RGB model, in Node.js, without Python.
//
//   node colorize.mjs IN.png|IN.jpg OUT.png [MODEL] [--saturation S]
//
// MODEL defaults to model-rgb.onnx in the current folder (write one with
// `colorize export model.onnx --rgb -o model-rgb.onnx`). The RGB model does all the work
// (Lab conversion, resizing to the network's working size, colour transfer back to full
// resolution): this script only decodes the picture, feeds uint8 [H, W, 3] and writes the
// uint8 [H, W, 3] result. Pictures are decoded and encoded in pure JavaScript (pngjs, jpeg-js).
//
// Limits: JPEG EXIF orientation is not applied (the pixels are used as stored); PNG alpha is
// kept as it is, 16-bit PNGs are reduced to 8 bits.

import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import process from 'node:process';

import jpeg from 'jpeg-js';
import ort from 'onnxruntime-node';
import pngjs from 'pngjs';

const { PNG } = pngjs;
const USAGE = 'usage: node colorize.mjs IN.png|IN.jpg OUT.png [MODEL] [--saturation S]';

function parseArgs(argv) {
  const positional = [];
  let saturation = 1.0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--saturation' || arg.startsWith('--saturation=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      saturation = Number(value);
      if (value === undefined || value === '' || !Number.isFinite(saturation) || saturation < 0) {
        fail(`--saturation wants a number >= 0 (0 gray, 1 the model's colours), got ${value}`, 2);
      }
    } else if (arg.startsWith('-') && arg !== '-') {
      fail(`unknown option ${arg}\n${USAGE}`, 2);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length < 2 || positional.length > 3) fail(USAGE, 2);
  const [input, output, model = 'model-rgb.onnx'] = positional;
  return { input, output, model, saturation };
}

function fail(message, code = 1) {
  console.error(`colorize.mjs: ${message}`);
  process.exit(code);
}

/** Decode a PNG or JPEG file -> { width, height, rgb: Uint8Array(H*W*3), alpha: Uint8Array(H*W) | null }. */
function decode(path) {
  const bytes = readFileSync(path);
  let width, height, rgba;
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) {
    ({ width, height, data: rgba } = PNG.sync.read(bytes)); // any PNG colour type -> 8-bit RGBA
  } else if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    ({ width, height, data: rgba } = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 2048 }));
  } else {
    throw new Error(`${path}: not a PNG or JPEG file`);
  }
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  const alpha = new Uint8Array(n);
  let opaque = true;
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = rgba[4 * i];
    rgb[3 * i + 1] = rgba[4 * i + 1];
    rgb[3 * i + 2] = rgba[4 * i + 2];
    alpha[i] = rgba[4 * i + 3];
    if (alpha[i] !== 255) opaque = false;
  }
  return { width, height, rgb, alpha: opaque ? null : alpha };
}

/** Encode RGB (and alpha, when the input had one) as an 8-bit PNG. */
function encodePng(width, height, rgb, alpha) {
  const png = new PNG({ width, height, colorType: alpha ? 6 : 2, inputHasAlpha: true });
  const n = width * height;
  for (let i = 0; i < n; i++) {
    png.data[4 * i] = rgb[3 * i];
    png.data[4 * i + 1] = rgb[3 * i + 1];
    png.data[4 * i + 2] = rgb[3 * i + 2];
    png.data[4 * i + 3] = alpha ? alpha[i] : 255;
  }
  return PNG.sync.write(png, { colorType: alpha ? 6 : 2, inputHasAlpha: true });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let picture;
  try {
    picture = decode(args.input);
  } catch (err) {
    fail(`cannot read ${args.input}: ${err.message}`);
  }
  const { width, height } = picture;

  const t0 = performance.now();
  let session;
  try {
    session = await ort.InferenceSession.create(args.model, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  } catch (err) {
    fail(`cannot load the model ${args.model}: ${err.message}`);
  }
  if (!session.inputNames.includes('image') || !session.outputNames.includes('colorized')) {
    fail(`${args.model} is not a labcolor RGB model (inputs ${session.inputNames}, outputs ${session.outputNames}); ` +
         'write one with `colorize export model.onnx --rgb -o model-rgb.onnx`');
  }
  const t1 = performance.now();

  const feeds = { image: new ort.Tensor('uint8', picture.rgb, [height, width, 3]) };
  if (session.inputNames.includes('saturation')) {
    feeds.saturation = new ort.Tensor('float32', Float32Array.of(args.saturation), [1]);
  }
  const { colorized } = await session.run(feeds, ['colorized']);
  const t2 = performance.now();

  const dims = colorized.dims.join('x');
  if (colorized.type !== 'uint8' || dims !== `${height}x${width}x3`) {
    fail(`the model returned ${colorized.type} [${dims}]; expected uint8 [${height}x${width}x3]`);
  }
  writeFileSync(args.output, encodePng(width, height, colorized.data, picture.alpha));
  console.log(`${args.input} (${width}x${height}) -> ${args.output}: model load ${(t1 - t0).toFixed(0)} ms, ` +
              `colorize ${(t2 - t1).toFixed(0)} ms (onnxruntime-node, cpu, saturation ${args.saturation})`);
  await session.release();
}

main().catch((err) => fail(err.stack || String(err)));
