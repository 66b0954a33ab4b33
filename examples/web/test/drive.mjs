#!/usr/bin/env node
// Drive the colorizer page in headless Chromium (playwright-core, no browser download): open it, give it a
// picture through the file input, wait for the result, download it as PNG, take a screenshot.
//
//   node test/drive.mjs --url 'http://127.0.0.1:8000/index.html?model=model-rgb.onnx' --image photo.png \
//        --out result.png [--saturation 0.5 --out2 result2.png] [--screenshot page.png] [--timeout 120] \
//        [--webgpu swiftshader]
//
// --saturation/--out2: after the first result (strength 1), move the colour-strength slider to S and save that
// result too. Prints one JSON line: execution provider, threads, per-run inference time, page texts.
// --webgpu swiftshader: start Chromium with a software WebGPU adapter (SwiftShader, on the CPU) instead of
// --disable-gpu, so the page's WebGPU path runs without a GPU (correct pixels, not a speed measurement).
// Chromium: /usr/bin/chromium, or $LABCOLOR_CHROMIUM (scripts/setup_js.sh installs it).

import process from 'node:process';

import { chromium } from 'playwright-core';

const FLAGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
               '--disable-component-update', '--disable-sync'];
const NO_GPU = ['--disable-gpu'];
const SWIFTSHADER_WEBGPU = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader',
                            '--use-angle=swiftshader', '--enable-features=Vulkan'];

function parseArgs(argv) {
  const args = { timeout: 120, screenshot: null, saturation: null, out2: null, webgpu: 'off' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!['url', 'image', 'out', 'out2', 'saturation', 'screenshot', 'timeout', 'webgpu'].includes(key) || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    args[key] = argv[i + 1];
  }
  if (!args.url || !args.image || !args.out) throw new Error('--url, --image and --out are required');
  if (!['off', 'swiftshader'].includes(args.webgpu)) throw new Error('--webgpu is off or swiftshader');
  args.timeout = Number(args.timeout) * 1000;
  return args;
}

const args = parseArgs(process.argv.slice(2));
const logs = [];
const browser = await chromium.launch({
  executablePath: process.env.LABCOLOR_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [...FLAGS, ...(args.webgpu === 'swiftshader' ? SWIFTSHADER_WEBGPU : NO_GPU)],
  timeout: 60_000,
});

async function waitForRun(page, count) {
  await page.waitForFunction(
    (n) => document.body.dataset.state === 'error' ||
      (document.body.dataset.state === 'done' && Number(document.getElementById('run-info').dataset.runs) >= n),
    count, { timeout: args.timeout, polling: 100 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state === 'error') throw new Error(`the page reports an error: ${await page.textContent('body')}`);
  return page.evaluate(() => ({ ...document.getElementById('run-info').dataset,
                                text: document.getElementById('run-info').textContent }));
}

async function saveResult(page, path) {
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: args.timeout }), page.click('#download')]);
  await download.saveAs(path);
  return download.suggestedFilename();
}

let status = 0;
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (msg) => logs.push(`[${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => logs.push(`[pageerror] ${err.message}`));
  page.on('requestfailed', (req) => logs.push(`[requestfailed] ${req.url()} ${req.failure()?.errorText}`));

  const t0 = Date.now();
  await page.goto(args.url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null,
                             { timeout: args.timeout, polling: 100 });
  const modelInfo = await page.textContent('#model-info');
  if (await page.evaluate(() => document.body.dataset.state) === 'error') throw new Error(`model not loaded: ${modelInfo}`);
  const loadMs = Date.now() - t0;

  await page.setInputFiles('#file', args.image);
  const runs = [{ saturation: 1, ...(await waitForRun(page, 1)) }];
  runs[0].file = await saveResult(page, args.out);
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });

  if (args.saturation !== null) {
    await page.fill('#saturation', String(args.saturation));  // fires input + change: the page runs again
    runs.push({ saturation: Number(args.saturation), ...(await waitForRun(page, 2)) });
    if (args.out2) runs[1].file = await saveResult(page, args.out2);
  }
  const ep = await page.getAttribute('#model-info', 'data-ep');
  console.log(JSON.stringify({ ep, load_ms: loadMs, model_info: modelInfo, runs, browser: browser.version() }));
} catch (err) {
  status = 1;
  console.error(`drive.mjs: ${err.message}`);
  console.error(logs.join('\n'));
} finally {
  await browser.close();
}
process.exit(status);
