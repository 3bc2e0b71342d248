// MusicRFM Studio's live player: plays a run's audio chunks with Web Audio as the server
// decodes them (GET studio/stream/<run id>: one JSON line per chunk, float32 PCM in base64).
// The Generate button's handler calls start() with a fresh run id before the request is sent,
// so the stream is open before the first chunk exists. `stats` is what tests and the
// benchmark read: when the click came, when the first chunk arrived and was scheduled to sound.
(() => {
  const S = (window.musicrfmStudio = window.musicrfmStudio || {});
  // Seconds between a chunk's arrival and its start: small for the first chunk (it sets when
  // sound starts), doubled after every underrun (a model slower than real time then plays in
  // longer, fewer stretches instead of stuttering on every chunk).
  const LEAD = 0.05;
  const MAX_LEAD = 2.0;

  S.newId = () => {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const show = (text) => {
    const el = document.getElementById("studio-live-status");
    if (el) el.textContent = text;
  };

  const decode = (b64) => {
    const raw = atob(b64);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  };

  S.stop = () => {
    if (S.stats && !S.stats.done) S.stats.stopped = true;
    if (S.abort) S.abort.abort();
    for (const src of S.sources || []) {
      try { src.stop(); } catch (e) { /* not started yet */ }
    }
    S.sources = [];
  };

  S.start = (id) => {
    S.stop();
    const ctx = S.ctx || (S.ctx = new (window.AudioContext || window.webkitAudioContext)());
    ctx.resume();
    const st = (S.stats = {
      id, clicked: performance.now(), firstChunk: null, firstSound: null, chunks: 0,
      samples: 0, sampleRate: 0, sumsq: 0, underruns: 0, done: false, stopped: false, error: null,
      arrivals: [], // [ms after the click, seconds of audio in the chunk, seconds still buffered]
    });
    const ctrl = (S.abort = new AbortController());
    S.sources = [];
    let next = 0;
    let lead = LEAD;
    show("waiting for the model…");
    const handle = (msg) => {
      if (msg.done) {
        st.stopped = !!msg.stopped;
        return;
      }
      const pcm = decode(msg.pcm);
      if (!pcm.length) return;
      const buf = ctx.createBuffer(1, pcm.length, msg.sr);
      buf.copyToChannel(pcm, 0);
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      const now = ctx.currentTime;
      st.arrivals.push([Math.round(performance.now() - st.clicked), buf.duration, Math.max(next - now, 0)]);
      if (next < now + 0.005) {
        if (st.chunks > 0) {
          st.underruns += 1;
          lead = Math.min(lead * 2, MAX_LEAD);
        }
        next = now + lead;
      }
      src.start(next);
      if (st.firstChunk === null) {
        st.firstChunk = performance.now();
        st.firstSound = st.firstChunk + (next - now) * 1000;
      }
      next += buf.duration;
      S.sources.push(src);
      st.chunks += 1;
      st.samples += pcm.length;
      st.sampleRate = msg.sr;
      for (let i = 0; i < pcm.length; i++) st.sumsq += pcm[i] * pcm[i];
      show(`▶ live: ${(st.samples / msg.sr).toFixed(2)} s received`);
    };
    fetch(new URL(`studio/stream/${id}`, window.location.href), { signal: ctrl.signal })
      .then(async (resp) => {
        if (!resp.ok) throw new Error(`stream: HTTP ${resp.status}`);
        const reader = resp.body.getReader();
        const text = new TextDecoder();
        let pending = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          pending += text.decode(value, { stream: true });
          let i;
          while ((i = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, i).trim();
            pending = pending.slice(i + 1);
            if (line) handle(JSON.parse(line));
          }
        }
      })
      .catch((e) => {
        if (e.name !== "AbortError") st.error = String(e);
      })
      .finally(() => {
        st.done = true;
        const secs = st.sampleRate ? (st.samples / st.sampleRate).toFixed(2) : "0";
        if (st.error) show(`stream error: ${st.error}`);
        else if (!st.samples) show("no audio (the message above says why)");
        else show(`${st.stopped ? "■ stopped" : "✓ done"}: ${secs} s streamed`);
      });
    return id;
  };
})();
