// labcolor's page, with two backends:
// * browser: one RGB model (uint8 [H, W, 3] in, uint8 [H, W, 3] out) run by onnxruntime-web in the page; the
//   photo never leaves the computer. Any static file server serving this folder (plus vendor/ and a model).
// * server: served by `colorize serve` (at /web/), the page posts the photo's file to ../v1/colorize and shows
//   the answer; the working size can be chosen too. Picked automatically when ../v1/model answers, or with
//   ?backend=server|browser.
//
// The page decodes the photo with the browser (createImageBitmap + canvas), feeds its RGB bytes and the
// colour strength to the model, and draws the result. The model does everything else (Lab, resizing to
// the network's working size, colour transfer back to full resolution), as `Colorizer.colorize` does in
// Python. onnxruntime-web is loaded from ./vendor/ (copied there by scripts/setup_js.sh): the WebGPU build
// when the browser offers a WebGPU adapter, else the smaller WASM-only build.
//
// URL parameters: ?model=URL (default model-rgb.onnx next to this page), ?ep=wasm|webgpu|auto (default auto),
// ?threads=N (WASM threads; default onnxruntime-web's choice, half the cores up to 4; more than 1 needs a
// cross-origin isolated page, i.e. a server sending COOP/COEP headers).
// For scripts (tests/test_js_runtimes.py): <body data-state> is starting | loading | ready | running | done |
// error, and #run-info carries data-ep, data-ms (inference time of the last run), data-runs, data-threads.

const params = new URLSearchParams(location.search);
const MODEL_URL = new URL(params.get('model') || 'model-rgb.onnx', location.href).href;
const EP_REQUEST = (params.get('ep') || 'auto').toLowerCase();
const THREADS = Number.parseInt(params.get('threads') || '0', 10) || 0;
const VENDOR = new URL('./vendor/', import.meta.url).href;
const API = new URL('../v1/', location.href).href;  // `colorize serve` serves this page at /web/

const $ = (id) => document.getElementById(id);
const ui = {
  modelInfo: $('model-info'), runInfo: $('run-info'), file: $('file'), saturation: $('saturation'),
  saturationValue: $('saturation-value'), download: $('download'), stage: $('stage'),
  input: $('input-canvas'), result: $('result-canvas'), compare: $('compare'), overlay: $('drop-overlay'),
  viewSlider: $('view-slider'), viewSide: $('view-side'), size: $('size'), sizeValue: $('size-value'),
  sizeControl: $('size-control'), footer: $('footer-text'),
};

let backend = null;      // 'browser' (onnxruntime-web in this page) or 'server' (`colorize serve`)
let ort = null;          // the onnxruntime-web module
let session = null;      // InferenceSession of the RGB model
let provider = null;     // execution provider that runs it: 'webgpu' or 'wasm'
let threads = 1;         // WASM threads (more than 1 only on a cross-origin isolated page)
let picture = null;      // { name, width, height, rgb: Uint8Array, alpha: Uint8Array | null }
let running = false;
let pending = false;
let runs = 0;

const setState = (state) => { document.body.dataset.state = state; };
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

function showError(where, err) {
  console.error(err);
  setState('error');
  where.textContent = err.message || String(err);
  where.classList.add('error');
}

// ------------------------------------------------------------------------------------------ model

async function webgpuAvailable() {
  if (!('gpu' in navigator)) return false;
  try {
    return Boolean(await navigator.gpu.requestAdapter());
  } catch {
    return false;
  }
}

async function fetchModel(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`cannot fetch the model ${url}: ${err.message}`);
  }
  if (!response.ok) {
    throw new Error(`cannot fetch the model ${url}: HTTP ${response.status}. Put an RGB model next to this page ` +
                    '(colorize export model.onnx --rgb -o model-rgb.onnx) or pass ?model=URL');
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function serverModel() {
  // `colorize serve` answers ../v1/model with its model and limits; a static file server does not.
  try {
    const response = await fetch(API + 'model');
    if (!response.ok) return null;
    const info = await response.json();
    return info && info.limits ? info : null;
  } catch {
    return null;
  }
}

async function start() {
  const requested = (params.get('backend') || 'auto').toLowerCase();
  const info = requested === 'browser' ? null : await serverModel();
  if (requested === 'server' && !info) throw new Error(`no labcolor server answers at ${API}model`);
  if (info) {
    backend = 'server';
    provider = `server, ${info.device}`;
    ui.sizeControl.hidden = false;
    ui.size.value = String(info.working_size);
    ui.size.max = String(Math.max(Number(ui.size.max), info.working_size));
    ui.sizeValue.textContent = `${info.working_size} px`;
    ui.saturation.value = String(info.saturation);
    ui.saturationValue.textContent = Number(info.saturation).toFixed(2);
    ui.modelInfo.textContent = `Server model ${info.model} on ${info.device}; working size ${info.working_size} px; ` +
      `uploads up to ${(info.limits.max_bytes / 2 ** 20).toFixed(0)} MB and ${(info.limits.max_pixels / 1e6).toFixed(0)} MP`;
    ui.modelInfo.dataset.ep = 'server';
    ui.footer.textContent = 'Colorized by the labcolor server that serves this page (POST /v1/colorize); ' +
      'nothing is stored. ?backend=browser runs the model in this page instead.';
    setState('ready');
    return;
  }
  backend = 'browser';
  await loadModel();
}

async function loadModel() {
  setState('loading');
  const t0 = performance.now();
  const gpu = EP_REQUEST === 'webgpu' || (EP_REQUEST === 'auto' && await webgpuAvailable());
  try {
    ort = await import(VENDOR + (gpu ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs'));
  } catch (err) {
    throw new Error(`cannot load onnxruntime-web from ${VENDOR} (run scripts/setup_js.sh): ${err.message}`);
  }
  ort.env.wasm.wasmPaths = VENDOR;
  if (THREADS > 0) ort.env.wasm.numThreads = THREADS;
  const bytes = await fetchModel(MODEL_URL);
  const tried = [];
  for (const ep of gpu ? ['webgpu', 'wasm'] : ['wasm']) {
    try {
      session = await ort.InferenceSession.create(bytes, { executionProviders: [ep] });
      provider = ep;
      break;
    } catch (err) {
      tried.push(`${ep}: ${err.message}`);
      console.warn(`execution provider ${ep} failed`, err);
    }
  }
  if (!session) throw new Error(`no execution provider could load ${MODEL_URL}: ${tried.join('; ')}`);
  if (!session.inputNames.includes('image') || !session.outputNames.includes('colorized')) {
    throw new Error(`${MODEL_URL} is not a labcolor RGB model (inputs ${session.inputNames}, outputs ` +
                    `${session.outputNames}); write one with colorize export model.onnx --rgb -o model-rgb.onnx`);
  }
  threads = provider === 'wasm' && self.crossOriginIsolated ? (ort.env.wasm.numThreads || 1) : 1;
  const ms = performance.now() - t0;
  const mb = (bytes.byteLength / 1e6).toFixed(1);
  const fellBack = gpu && provider !== 'webgpu' ? ' (WebGPU failed, fell back to WASM)' : '';
  ui.modelInfo.textContent = `Model ${decodeURIComponent(MODEL_URL.split('/').pop())} (${mb} MB) loaded in ` +
    `${ms.toFixed(0)} ms; execution provider: ${provider}${provider === 'wasm' ? `, ${threads} thread${threads > 1 ? 's' : ''}` : ''}` +
    `${fellBack}; onnxruntime-web ${ort.env.versions?.web ?? ''}`;
  ui.modelInfo.dataset.ep = provider;
  setState('ready');
}

// ---------------------------------------------------------------------------------------- picture

async function openFile(file) {
  if (!file) return;
  let bitmap;
  try {
    // As stored: no colour-profile conversion (Python does none either); EXIF orientation applied.
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', premultiplyAlpha: 'none',
                                             colorSpaceConversion: 'none' });
  } catch (err) {
    throw new Error(`cannot decode ${file.name}: not a picture this browser reads`);
  }
  const { width, height } = bitmap;
  ui.input.width = width;
  ui.input.height = height;
  const ctx = ui.input.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  const alpha = new Uint8Array(n);
  let opaque = true;
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    rgb[3 * i] = rgba[j];
    rgb[3 * i + 1] = rgba[j + 1];
    rgb[3 * i + 2] = rgba[j + 2];
    alpha[i] = rgba[j + 3];
    if (rgba[j + 3] !== 255) opaque = false;
  }
  picture = { name: file.name || 'photo', file, width, height, rgb, alpha: opaque ? null : alpha };
  ui.result.width = width;
  ui.result.height = height;
  ui.result.getContext('2d').clearRect(0, 0, width, height);
  ui.stage.hidden = false;
  ui.download.disabled = true;
  await colorize();
}

// --------------------------------------------------------------------------------------- colorize

async function colorizeOnServer(saturation) {
  // The file itself is sent: the server decodes it as `colorize` does (EXIF, 16-bit, palette).
  const query = new URLSearchParams({ saturation: String(saturation), size: ui.size.value, format: 'png' });
  const response = await fetch(`${API}colorize?${query}`, { method: 'POST', body: picture.file,
                                                           headers: { 'Content-Type': 'application/octet-stream' } });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    if (response.status === 503) detail += ' (the server is busy: try again in a moment)';
    throw new Error(`the server refused the picture: ${detail}`);
  }
  const bitmap = await createImageBitmap(await response.blob(), { premultiplyAlpha: 'none',
                                                                   colorSpaceConversion: 'none' });
  const ctx = ui.result.getContext('2d');
  ctx.clearRect(0, 0, ui.result.width, ui.result.height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
}

async function colorize() {
  if (!picture || (!session && backend !== 'server')) return;
  if (running) {
    pending = true;  // the strength changed during a run: run again once it ends
    return;
  }
  running = true;
  setState('running');
  ui.runInfo.classList.remove('error');
  ui.runInfo.textContent = `Colorizing ${picture.width}×${picture.height} with ${provider}…`;
  await nextFrame();  // paint the status before the (blocking) inference
  try {
    const { width, height } = picture;
    const saturation = Number(ui.saturation.value);
    if (backend === 'server') {
      const t0 = performance.now();
      await colorizeOnServer(saturation);
      finishRun(width, height, saturation, performance.now() - t0);
      return;
    }
    const feeds = { image: new ort.Tensor('uint8', picture.rgb, [height, width, 3]) };
    if (session.inputNames.includes('saturation')) {
      feeds.saturation = new ort.Tensor('float32', Float32Array.of(saturation), [1]);
    }
    const t0 = performance.now();
    const { colorized } = await session.run(feeds, ['colorized']);
    const ms = performance.now() - t0;
    const out = colorized.data;
    if (colorized.type !== 'uint8' || colorized.dims.join('x') !== `${height}x${width}x3`) {
      throw new Error(`the model returned ${colorized.type} [${colorized.dims}]; expected uint8 [${height}, ${width}, 3]`);
    }
    const image = new ImageData(width, height);
    const px = image.data;
    for (let i = 0, j = 0; i < width * height; i++, j += 4) {
      px[j] = out[3 * i];
      px[j + 1] = out[3 * i + 1];
      px[j + 2] = out[3 * i + 2];
      px[j + 3] = picture.alpha ? picture.alpha[i] : 255;
    }
    ui.result.getContext('2d').putImageData(image, 0, 0);
    colorized.dispose?.();
    finishRun(width, height, saturation, ms);
  } catch (err) {
    showError(ui.runInfo, err);
  } finally {
    running = false;
  }
  if (pending) {
    pending = false;
    await colorize();
  }
}

function finishRun(width, height, saturation, ms) {
  runs += 1;
  const where = provider === 'wasm' ? `wasm, ${threads} thread${threads > 1 ? 's' : ''}` : provider;
  ui.runInfo.textContent = `Colorized ${width}×${height} at strength ${saturation.toFixed(2)} in ` +
                           `${ms.toFixed(0)} ms (${where}).`;
  Object.assign(ui.runInfo.dataset, { ep: backend === 'server' ? 'server' : provider, ms: ms.toFixed(1),
                                      runs: String(runs), threads: String(threads) });
  ui.download.disabled = false;
  setState('done');
}

function download() {
  if (!picture) return;
  ui.result.toBlob((blob) => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `${picture.name.replace(/\.[^.]*$/, '')}_colorized.png`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }, 'image/png');
}

// ----------------------------------------------------------------------------------------- wiring

function setCompare(percent) {
  const p = Math.min(100, Math.max(0, percent));
  ui.stage.style.setProperty('--pos', `${p}%`);
  ui.compare.value = String(p);
}

function setView(side) {
  ui.stage.classList.toggle('side-view', side);
  ui.stage.classList.toggle('slider-view', !side);
  ui.viewSide.setAttribute('aria-pressed', String(side));
  ui.viewSlider.setAttribute('aria-pressed', String(!side));
}

function guard(promise) {
  promise.catch((err) => showError(ui.runInfo, err));
}

ui.file.addEventListener('change', () => guard(openFile(ui.file.files[0])));
ui.saturation.addEventListener('input', () => {
  ui.saturationValue.textContent = Number(ui.saturation.value).toFixed(2);
});
ui.saturation.addEventListener('change', () => guard(colorize()));
ui.size.addEventListener('input', () => { ui.sizeValue.textContent = `${ui.size.value} px`; });
ui.size.addEventListener('change', () => guard(colorize()));
ui.download.addEventListener('click', download);
ui.compare.addEventListener('input', () => setCompare(Number(ui.compare.value)));
ui.viewSlider.addEventListener('click', () => setView(false));
ui.viewSide.addEventListener('click', () => setView(true));

// Drag on the picture to move the before/after divider.
let dragging = false;
const follow = (event) => {
  const box = ui.result.getBoundingClientRect();
  setCompare(((event.clientX - box.left) / box.width) * 100);
};
ui.stage.addEventListener('pointerdown', (event) => {
  if (!ui.stage.classList.contains('slider-view') || event.target === ui.compare) return;
  dragging = true;
  ui.stage.setPointerCapture(event.pointerId);
  follow(event);
});
ui.stage.addEventListener('pointermove', (event) => { if (dragging) follow(event); });
ui.stage.addEventListener('pointerup', () => { dragging = false; });

// Drop a photo anywhere on the page.
let dragDepth = 0;
window.addEventListener('dragenter', (event) => { event.preventDefault(); dragDepth += 1; ui.overlay.hidden = false; });
window.addEventListener('dragleave', () => { dragDepth -= 1; if (dragDepth <= 0) { dragDepth = 0; ui.overlay.hidden = true; } });
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => {
  event.preventDefault();
  dragDepth = 0;
  ui.overlay.hidden = true;
  guard(openFile(event.dataTransfer.files[0]));
});

setCompare(50);
start()
  .then(() => colorize())  // a photo picked while the model was loading
  .catch((err) => showError(ui.modelInfo, err));
