// MVLM browser UI: plain JS, relative URLs only (works behind any port or path prefix).
// The server is the source of truth: this page polls /api/status and /api/history and
// redraws; it keeps only the drawn box, the timeline copy and the last shown frame.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  status: null,
  video: null,          // {width, height, frame_count, ...}
  preview: null,        // ImageBitmap of the first frame
  box: null,            // [x, y, w, h] in video pixels, drawn by the user on the first frame
  switchBox: null,      // [x, y, w, h] drawn on the live frame: the next switch's box
  drag: null,           // {p0} while dragging
  live: null,           // ImageBitmap of the last tracked frame shown
  checkpoints: [],      // GET /api/checkpoints entries
  webcam: null,         // {stream, timer, sending} while the page's camera feeds the server
  shownSeq: -1,         // latest frame number drawn on the canvas
  history: [],          // [{frame, kappa, mode, event}]
  historyRun: -1,
  fetchingFrame: false,
};

// ---------------------------------------------------------------- helpers

// Every request carries X-MVLM-Client: the server refuses state-changing requests without it
// (or a JSON body), which a cross-site form cannot send (docs/reliability.md, "Server").
async function api(path, options = {}) {
  const headers = { "X-MVLM-Client": "1", ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return body;
}

const postJSON = (path, data) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data || {}) });

function say(text, isError = false) {
  const el = $("message");
  el.textContent = text || "";
  el.className = "message" + (isError ? " error" : "");
}

async function guarded(action) {
  try {
    say("");
    await action();
  } catch (err) {
    say(err.message, true);
  }
  refresh();
}

// ---------------------------------------------------------------- loading

async function loadPresets() {
  const p = await api("api/presets");
  const fill = (select, values) => values.forEach((v) => select.add(new Option(v, v)));
  fill($("model-preset"), p.model);
  $("model-preset").value = p.model.includes("tiny") ? "tiny" : p.model[0];
  fill($("tracker-preset"), p.tracker);
  fill($("compat"), p.compat);
  fill($("ckpt-preset"), p.model);
  $("upload-file").title = `limit ${p.upload_limit_mb} MB`;
  $("video-path").placeholder = `path under ${p.data_root}`;
}

// the checkpoints the server finds under <data root>/models, with the mode/preset they state
async function loadCheckpointList() {
  const r = await api("api/checkpoints");
  state.checkpoints = r.checkpoints || [];
  const select = $("checkpoint-list");
  while (select.options.length > 1) select.remove(1);
  state.checkpoints.forEach((c, i) => {
    const what = c.error ? `unreadable: ${c.error}`
      : c.preset ? `${c.format}, preset ${c.preset}, mode ${c.mode}` : `${c.format}, mode and preset not stated`;
    select.add(new Option(`${c.path} (${what})`, String(i)));
  });
}

function pickCheckpoint() {
  const v = $("checkpoint-list").value;
  const c = v === "" ? null : state.checkpoints[parseInt(v, 10)];
  $("checkpoint").value = c ? c.path : "";
  // a file that states nothing (released .pth.tar) needs its preset and mode from the user
  $("ckpt-preset").value = "";
  $("ckpt-mode").value = "";
  if (c && !c.preset) $("ckpt-mode").focus();
}

async function loadWeightsList() {
  const r = await api("api/files?kind=weights");
  const select = $("text-weights");
  while (select.options.length > 1) select.remove(1);
  r.files.forEach((f) => select.add(new Option(f, f)));
}

async function loadModel() {
  say("loading model…");
  $("model-error").textContent = "";
  try {
    const info = await postJSON("api/model", {
      preset: $("model-preset").value,
      tracker_preset: $("tracker-preset").value || null,
      compat: $("compat").value,
      device: $("device").value,
      checkpoint: $("checkpoint").value.trim() || null,
      checkpoint_preset: $("ckpt-preset").value || null,
      mode: $("ckpt-mode").value || null,
      text_weights: $("text-weights").value || null,
      random_init: $("random-text").checked,
    });
    say(info.random_init ? "model loaded (random weights in it: boxes are meaningless)" : "model loaded");
  } catch (err) {
    $("model-error").textContent = "load failed: " + err.message;
    throw err;
  }
}

async function videoLoaded(info) {
  if (!info.live) stopWebcam();
  state.video = info;
  state.box = null;
  state.switchBox = null;
  state.live = null;
  state.shownSeq = -1;
  if (info.suggested_text && !$("text").value.trim()) $("text").value = info.suggested_text;
  const blob = await (await fetch("api/video/first_frame?t=" + Date.now())).blob();
  state.preview = await createImageBitmap(blob);
  const canvas = $("frame-canvas");
  canvas.width = info.width;
  canvas.height = info.height;
  drawPreview();
  say(`video ready: ${info.name}`);
}

async function loadPath() {
  await videoLoaded(await postJSON("api/video/path", { path: $("video-path").value }));
}

async function upload() {
  const file = $("upload-file").files[0];
  if (!file) throw new Error("choose a video file first");
  say(`uploading ${file.name}…`);
  // raw bytes as octet-stream: the only upload type the server takes
  const info = await api("api/video/upload?filename=" + encodeURIComponent(file.name), {
    method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file,
  });
  await videoLoaded(info);
}

async function fetchUrl() {
  const url = $("video-url").value.trim();
  if (!url) throw new Error("type a video URL first");
  say(`fetching ${url}…`);
  await videoLoaded(await postJSON("api/video/url", { url }));
}

// ---------------------------------------------------------------- the page's camera

function grabFrame() {
  const video = $("webcam-video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("could not encode a camera frame"))), "image/jpeg", 0.85));
}

const postFrame = (path, blob) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: blob });

async function startWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    throw new Error("this page cannot use a camera (needs http://127.0.0.1 / localhost or https)");
  if (!state.webcam) {
    say("starting the camera…");
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    const video = $("webcam-video");
    video.srcObject = stream;
    await video.play();
    for (let i = 0; i < 100 && !video.videoWidth; i++) await new Promise((r) => setTimeout(r, 50));
    state.webcam = { stream, timer: null, sending: false };
  }
  await webcamSnapshot();
}

// the snapshot is the frame a box is drawn on and the first frame a run starts from
async function webcamSnapshot() {
  const info = await postFrame("api/video/webcam", await grabFrame());
  await videoLoaded(info);
  if (!state.webcam.timer) state.webcam.timer = setInterval(pushWebcamFrame, 100);
  $("webcam-info").textContent = `on: ${info.width}×${info.height}`;
  showWebcamButtons();
}

async function pushWebcamFrame() {
  const cam = state.webcam, s = state.status && state.status.state;
  if (!cam || cam.sending || !(s === "running" || s === "paused")) return;  // frames matter only while tracking
  cam.sending = true;
  try {
    await postFrame("api/webcam/frame", await grabFrame());
  } catch (err) {
    say("camera: " + err.message, true);
  } finally {
    cam.sending = false;
  }
}

function stopWebcam() {
  const cam = state.webcam;
  if (!cam) return;
  clearInterval(cam.timer);
  cam.stream.getTracks().forEach((t) => t.stop());
  state.webcam = null;
  $("webcam-info").textContent = "off";
  showWebcamButtons();
}

function showWebcamButtons() {
  $("btn-webcam-snap").disabled = !state.webcam;
  $("btn-webcam-off").disabled = !state.webcam;
}

async function sample() {
  say("generating a sample sequence…");
  const frames = parseInt($("sample-frames").value, 10) || 120;
  await videoLoaded(await postJSON("api/video/sample", { frames }));
}

// ---------------------------------------------------------------- tracking control

async function start() {
  await postJSON("api/track/start", {
    text: $("text").value, box: state.box, realtime: $("realtime").checked,
  });
  state.history = [];
  state.shownSeq = -1;
}

async function switchTarget() {
  const text = $("new-text").value.trim();
  if (!text && !state.switchBox) throw new Error("draw a box on the live frame or type a new sentence");
  const r = await postJSON("api/track/sentence", { text: text || null, box: state.switchBox });
  $("text").value = r.text;
  $("new-text").value = "";
  state.switchBox = null;
  showBoxes();
  say(r.box ? `switched: box ${r.box.map(Math.round).join(", ")}` + (text ? ` and "${r.text}"` : "") : `switched to "${r.text}"`);
}

// ---------------------------------------------------------------- drawing the box on the preview

function canvasPoint(event) {
  const canvas = $("frame-canvas");
  const rect = canvas.getBoundingClientRect();
  // the canvas is CSS-scaled: map client pixels to video pixels
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

function boxFrom(p0, p1) {
  const x = Math.min(p0[0], p1[0]), y = Math.min(p0[1], p1[1]);
  return [Math.round(x), Math.round(y), Math.round(Math.abs(p1[0] - p0[0])), Math.round(Math.abs(p1[1] - p0[1]))];
}

function isActive() {
  const s = state.status && state.status.state;
  return s === "running" || s === "paused";
}

// before a run: a box on the first frame (start); during a run: a box on the live frame (switch)
function canDraw() {
  return isActive() ? !!state.live : !!state.preview;
}

function showBoxes() {
  $("box-info").textContent = state.box ? `box ${state.box.join(", ")}` : "no box (template-free)";
  $("switch-box-info").textContent = state.switchBox ? `new box ${state.switchBox.join(", ")}` : "no new box";
}

function drawPreview(dragBox) {
  const base = isActive() ? state.live : state.preview;
  if (!base) return;
  const canvas = $("frame-canvas");
  if (canvas.width !== base.width || canvas.height !== base.height) {
    canvas.width = base.width;
    canvas.height = base.height;
  }
  const ctx = canvas.getContext("2d");
  ctx.drawImage(base, 0, 0);
  const box = dragBox || (isActive() ? state.switchBox : state.box);
  if (box) {
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = Math.max(1, canvas.width / 400);
    ctx.strokeStyle = isActive() ? "#d04fd0" : "#f7c94f";
    ctx.strokeRect(box[0], box[1], box[2], box[3]);
    ctx.setLineDash([]);
  }
  showBoxes();
}

function setupCanvas() {
  const canvas = $("frame-canvas");
  canvas.addEventListener("mousedown", (e) => {
    if (!canDraw()) return;
    state.drag = { p0: canvasPoint(e) };
  });
  canvas.addEventListener("mousemove", (e) => {
    if (state.drag) drawPreview(boxFrom(state.drag.p0, canvasPoint(e)));
  });
  window.addEventListener("mouseup", (e) => {
    if (!state.drag) return;
    const box = boxFrom(state.drag.p0, canvasPoint(e));
    state.drag = null;
    const drawn = box[2] >= 2 && box[3] >= 2 ? box : null;  // a click is not a box
    if (isActive()) state.switchBox = drawn; else state.box = drawn;
    drawPreview();
  });
}

// ---------------------------------------------------------------- live view

async function showLatestFrame(frame) {
  if (state.fetchingFrame || frame === state.shownSeq) return;
  state.fetchingFrame = true;
  try {
    const response = await fetch("api/frame.jpg?f=" + frame);
    if (!response.ok) return;
    state.live = await createImageBitmap(await response.blob());
    if (!state.drag) drawPreview();  // the live frame with a pending switch box on top
    state.shownSeq = frame;
  } finally {
    state.fetchingFrame = false;
  }
}

function showStatus(s) {
  const pill = $("state");
  pill.textContent = s.state + (s.error ? ": " + s.error : "");
  pill.className = "pill " + s.state;
  const total = s.total_frames && s.total_frames > 0 ? s.total_frames : "?";
  $("frame-counter").textContent = s.frame === null ? "–" : `${s.frame + 1} / ${total}`;
  $("kappa").textContent = s.kappa === null ? "–" : s.kappa.toFixed(3);
  $("mode").textContent = s.mode || "–";
  $("mode").style.color = s.mode === "global" ? "var(--global)" : s.mode === "local" ? "var(--local)" : "";
  $("fps").textContent = s.frame === null ? "–" : s.fps.toFixed(1);
  const info = $("model-info");
  info.textContent = s.model ? s.model.description : "no model loaded";
  info.className = "info" + (s.model && s.model.random_init ? " warn" : "");
  $("video-info").textContent = s.video
    ? `${s.video.name}: ${s.video.width}×${s.video.height}, ${s.video.frame_count > 0 ? s.video.frame_count : "?"} frames, ${s.video.fps} fps`
    : "no video loaded";
  const active = s.state === "running" || s.state === "paused";
  $("btn-start").disabled = active || !s.model || !s.video;
  $("btn-pause").disabled = s.state !== "running";
  $("btn-resume").disabled = s.state !== "paused";
  $("btn-stop").disabled = !active;
  $("btn-switch").disabled = !active;
  for (const id of ["btn-load-model", "btn-load-path", "btn-upload", "btn-url", "btn-webcam", "btn-webcam-snap",
                    "btn-sample"]) $(id).disabled = active;
  if (active) $("btn-webcam-off").disabled = true; else showWebcamButtons();
  if (!active && state.switchBox) { state.switchBox = null; showBoxes(); }
}

async function refresh() {
  try {
    const s = await api("api/status");
    state.status = s;
    showStatus(s);
    await updateHistory(s);
    if (s.frame !== null && s.run > 0) await showLatestFrame(s.frames_done);
  } catch (err) {
    $("state").textContent = "server unreachable";
    $("state").className = "pill error";
  }
}

// ---------------------------------------------------------------- timeline

async function updateHistory(s) {
  if (s.run !== state.historyRun) {
    state.history = [];
    state.historyRun = s.run;
  }
  if (s.history_len > state.history.length) {
    const h = await api("api/history?since=" + state.history.length);
    if (h.run === state.historyRun) state.history.push(...h.items);
  }
  drawTimeline(s.total_frames);
}

function drawTimeline(totalFrames) {
  const canvas = $("timeline");
  // match the backing store to the displayed width for crisp lines
  const width = Math.max(200, Math.round(canvas.clientWidth || canvas.width));
  if (canvas.width !== width) canvas.width = width;
  const ctx = canvas.getContext("2d");
  const H = canvas.height, W = canvas.width, band = 14, top = 6, bottom = H - band - 4;
  ctx.clearRect(0, 0, W, H);
  const items = state.history;
  const lastFrame = items.length ? items[items.length - 1].frame : 0;
  const span = Math.max(totalFrames > 0 ? totalFrames : 0, lastFrame + 1, 2);
  const xOf = (f) => (f + 0.5) * W / span;
  const kappas = items.map((it) => it.kappa).filter((k) => k !== null);
  let lo = Math.min(0, ...kappas), hi = Math.max(0.2, ...kappas);
  if (hi - lo < 1e-6) hi = lo + 1;
  const yOf = (k) => bottom - (k - lo) / (hi - lo) * (bottom - top);

  // mode band at the bottom: one tick per frame
  for (const it of items) {
    ctx.fillStyle = it.mode === "global" ? "#ff8c00" : it.mode === "local" ? "#3cc83c" : "#4f9cf7";
    ctx.fillRect(Math.floor(xOf(it.frame - 0.5)), H - band, Math.max(1, Math.ceil(W / span)), band);
  }
  // zero line
  ctx.strokeStyle = "#3a414d";
  ctx.beginPath(); ctx.moveTo(0, yOf(0)); ctx.lineTo(W, yOf(0)); ctx.stroke();
  // sentence changes
  ctx.strokeStyle = "#d04fd0";
  for (const it of items) {
    if (it.event === "switch") { ctx.beginPath(); ctx.moveTo(xOf(it.frame), top); ctx.lineTo(xOf(it.frame), H); ctx.stroke(); }
  }
  // κ curve (gaps where κ is unknown)
  ctx.strokeStyle = "#e4e6eb";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let pen = false;
  for (const it of items) {
    if (it.kappa === null) { pen = false; continue; }
    const x = xOf(it.frame), y = yOf(it.kappa);
    if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    pen = true;
  }
  ctx.stroke();
  ctx.lineWidth = 1;
  ctx.fillStyle = "#9aa0ab";
  ctx.font = "11px sans-serif";
  ctx.fillText(`κ ${hi.toFixed(2)}`, 4, top + 9);
  ctx.fillText(`κ ${lo.toFixed(2)}`, 4, bottom - 2);
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("btn-load-model").onclick = () => guarded(loadModel);
  $("btn-load-path").onclick = () => guarded(loadPath);
  $("btn-upload").onclick = () => guarded(upload);
  $("btn-sample").onclick = () => guarded(sample);
  $("btn-start").onclick = () => guarded(start);
  $("btn-pause").onclick = () => guarded(() => postJSON("api/track/pause"));
  $("btn-resume").onclick = () => guarded(() => postJSON("api/track/resume"));
  $("btn-stop").onclick = () => guarded(() => postJSON("api/track/stop"));
  $("btn-switch").onclick = () => guarded(switchTarget);
  $("btn-url").onclick = () => guarded(fetchUrl);
  $("btn-webcam").onclick = () => guarded(startWebcam);
  $("btn-webcam-snap").onclick = () => guarded(webcamSnapshot);
  $("btn-webcam-off").onclick = () => stopWebcam();
  $("checkpoint-list").onchange = pickCheckpoint;
  $("btn-clear-box").onclick = () => { state.box = null; drawPreview(); };
  $("btn-clear-switch-box").onclick = () => { state.switchBox = null; drawPreview(); };
  for (const id of TABS) $(id).onclick = () => showTab(id);
  setupCanvas();
}

const TABS = ["tab-model", "tab-video", "tab-track"];

function showTab(id) {
  for (const tabId of TABS) {
    const on = tabId === id;
    $(tabId).className = "tab" + (on ? " active" : "");
    $(tabId.replace("tab-", "panel-")).hidden = !on;
  }
  if (id === "tab-model") guarded(async () => { await loadCheckpointList(); await loadWeightsList(); });
}

async function poll() {
  await refresh();
  setTimeout(poll, 200);
}

wire();
loadPresets().then(loadCheckpointList).then(loadWeightsList).catch((err) => say(err.message, true));
poll();
