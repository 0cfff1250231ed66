/* omnidesk web chat widget. Served inside one closure after the socket.io client
   (`io` in scope, nothing global). Renders in a Shadow DOM; text is always text. */
var S = document.currentScript;
if (S && !window.__omnideskWidget) {
  window.__omnideskWidget = true;
  var KEY = S.getAttribute('data-widget') || 'default';
  var BASE = new URL(S.src, location.href).origin;
  var USER_ID = S.getAttribute('data-user-id'), USER_HASH = S.getAttribute('data-user-hash');
  var LS = 'omnidesk:' + KEY + ':';
  var load = function (k, d) { try { var v = localStorage.getItem(LS + k); return v ? JSON.parse(v) : d; } catch (e) { return d; } };
  var save = function (k, v) { try { localStorage.setItem(LS + k, JSON.stringify(v)); } catch (e) { /* private mode */ } };

  var token = load('token', null), profile = load('profile', {}), pending = load('pending', []);
  var seen = {}, seqs = [], cfg = {}, avail = { available: true }, unread = 0, isOpen = false;
  var baseTitle = document.title, typingTimer = 0, typingSent = 0, agentTypingTimer = 0;

  var el = function (tag, attrs, kids) {
    var n = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') n.textContent = attrs[k];
      else if (k.slice(0, 2) === 'on') n.addEventListener(k.slice(2), attrs[k]);
      else n.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) n.appendChild(c); });
    return n;
  };

  var CSS = ':host{all:initial}' +
    '.w{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;position:fixed;right:20px;bottom:20px;z-index:2147483000;text-align:left}' +
    '.w *{box-sizing:border-box;font:inherit;margin:0}' +
    '.l{width:56px;height:56px;border-radius:50%;border:0;background:var(--c);color:var(--t);cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);position:relative;display:flex;align-items:center;justify-content:center;margin-left:auto}' +
    '.l svg{width:28px;height:28px;fill:currentColor}' +
    '.b{position:absolute;top:-4px;right:-4px;background:#dc2626;color:#fff;border-radius:10px;min-width:20px;height:20px;padding:0 6px;font-size:12px;line-height:20px;text-align:center}' +
    '.p{width:360px;height:540px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;margin-bottom:12px}' +
    '.h{background:var(--c);color:var(--t);padding:12px 14px;display:flex;align-items:center;gap:8px}.h h2{font-size:16px;font-weight:600;flex:1}' +
    '.h small{display:block;font-size:12px;opacity:.85}.x{background:none;border:0;color:inherit;font-size:22px;cursor:pointer;line-height:1;padding:4px 8px}' +
    '.g{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f7f7f8}' +
    '.m{max-width:80%;padding:8px 11px;border-radius:12px;background:#fff;border:1px solid #e4e4e7;white-space:pre-wrap;overflow-wrap:anywhere;align-self:flex-start}' +
    '.m.v{align-self:flex-end;background:var(--c);color:var(--t);border-color:transparent}.m.v a{color:inherit}' +
    '.m a{color:#1d4ed8;text-decoration:underline}.m img{max-width:100%;border-radius:6px;display:block;margin-top:4px}' +
    '.n{font-size:11px;font-weight:600;color:#52525b;margin-bottom:2px}.s{font-size:11px;opacity:.75;margin-top:2px;text-align:right}' +
    '.i{font-size:12px;color:#52525b;padding:0 14px;min-height:18px}.o{font-size:13px;background:#fef3c7;color:#78350f;padding:8px 12px}.o:empty{display:none}' +
    '.f{display:flex;gap:6px;padding:10px;border-top:1px solid #e4e4e7;align-items:flex-end}' +
    '.f textarea{flex:1;resize:none;border:1px solid #d4d4d8;border-radius:8px;padding:8px;height:40px;max-height:120px;color:#111;background:#fff}' +
    '.k{border:0;border-radius:8px;background:var(--c);color:var(--t);padding:0 12px;height:40px;cursor:pointer}.a{background:#e4e4e7;color:#111}' +
    '.q{padding:12px;display:flex;flex-direction:column;gap:8px;border-top:1px solid #e4e4e7}.q label{font-size:13px;display:flex;flex-direction:column;gap:2px}' +
    '.q label.c{flex-direction:row;gap:6px;align-items:flex-start}.q input[type=text],.q input[type=email]{border:1px solid #d4d4d8;border-radius:6px;padding:6px 8px;color:#111;background:#fff}' +
    '.r{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}' +
    'button:focus-visible,textarea:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}' +
    '[hidden]{display:none!important}' +
    '@media (max-width:480px){.w{right:0;bottom:0;left:0}.l{margin:0 16px 16px auto}.p{width:100vw;height:100vh;max-height:none;border-radius:0;margin:0;position:fixed;inset:0}.open .l{display:none}}';

  var host = el('omnidesk-chat');
  host.style.setProperty('all', 'initial', 'important');
  var root = host.attachShadow({ mode: 'open' });
  var ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';
  var badge = el('span', { 'class': 'b', hidden: '', 'aria-hidden': 'true' });
  var launcher = el('button', { 'class': 'l', type: 'button', 'aria-label': 'Open chat', 'aria-expanded': 'false' });
  launcher.innerHTML = ICON;  // static markup, no data
  launcher.appendChild(badge);
  var title = el('h2', { id: 'odt', text: 'Chat' }), status = el('small', { text: '' });
  var closeBtn = el('button', { 'class': 'x', type: 'button', 'aria-label': 'Close chat', text: '\u00d7' });
  var log = el('div', { 'class': 'g', role: 'log', 'aria-live': 'polite', 'aria-label': 'Conversation', tabindex: '0' });
  var typingRow = el('div', { 'class': 'i', 'aria-live': 'polite' });
  var notice = el('div', { 'class': 'o', role: 'status' });
  var pre = el('form', { 'class': 'q', hidden: '', 'aria-label': 'Before we start' });
  var away = el('form', { 'class': 'q', hidden: '', 'aria-label': 'Leave your email' });
  var input = el('textarea', { id: 'odm', rows: '1', placeholder: 'Type your message\u2026' });
  var file = el('input', { type: 'file', id: 'odf', 'class': 'r', tabindex: '-1' });
  var attach = el('button', { 'class': 'k a', type: 'button', 'aria-label': 'Attach a file' });
  attach.innerHTML = '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path fill="none" stroke="currentColor" stroke-width="2" d="M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L15 7"/></svg>';
  var sendBtn = el('button', { 'class': 'k', type: 'submit', text: 'Send' });
  var composer = el('form', { 'class': 'f' }, [el('label', { 'for': 'odm', 'class': 'r', text: 'Message' }), input, file, attach, sendBtn]);
  var panel = el('div', { 'class': 'p', role: 'dialog', 'aria-labelledby': 'odt', hidden: '' }, [
    el('div', { 'class': 'h' }, [el('div', { style: 'flex:1' }, [title, status]), closeBtn]),
    log, typingRow, notice, pre, away, composer]);
  // hidden until its look is known (cached from the last visit, or the first hello):
  // never a colourless launcher or header while the service is slow or away
  var wrap = el('div', { 'class': 'w', hidden: '' }, [panel, launcher]);
  root.appendChild(el('style', { text: CSS }));
  root.appendChild(wrap);

  // -- rendering (text only; links http/https with rel=noopener) -------------------------
  var URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  var safeUrl = function (u) { try { var p = new URL(u); return (p.protocol === 'http:' || p.protocol === 'https:') ? p.href : null; } catch (e) { return null; } };
  var link = function (href, text) { return el('a', { href: href, target: '_blank', rel: 'noopener noreferrer nofollow', text: text }); };
  function richText(node, text) {
    var last = 0; text.replace(URL_RE, function (u, at) {
      node.appendChild(document.createTextNode(text.slice(last, at)));
      var href = safeUrl(u);
      node.appendChild(href ? link(href, u) : document.createTextNode(u));
      last = at + u.length;
    });
    node.appendChild(document.createTextNode(text.slice(last)));
  }
  function bubble(m) {
    var mine = m.author === 'visitor';
    var b = el('div', { 'class': 'm' + (mine ? ' v' : ''), 'data-seq': m.seq || '' });
    if (!mine) b.appendChild(el('div', { 'class': 'n', text: m.author === 'agent' ? (m.name || 'Agent') : (m.name || cfg.title || 'Bot') }));
    var body = el('div'); richText(body, m.text || ''); b.appendChild(body);
    (m.files || []).forEach(function (f) {
      var href = f.url && safeUrl(f.url);
      if (!href) { b.appendChild(el('div', { text: 'Attachment: ' + f.filename })); return; }
      var a = link(href, /^image\//.test(f.content_type) ? '' : 'Attachment: ' + f.filename);
      if (/^image\//.test(f.content_type)) a.appendChild(el('img', { src: href, alt: f.filename }));
      b.appendChild(a);
    });
    if (mine) b.appendChild(el('div', { 'class': 's', text: m.pending ? 'Sending\u2026' : (m.status === 'read' ? 'Read' : 'Sent') }));
    return b;
  }
  function place(b, seq) {
    var after = null;  // keep order by sequence number, unacknowledged ones last
    for (var i = log.children.length - 1; i >= 0; i--) {
      var c = log.children[i], s = +c.getAttribute('data-seq');
      if (!s) { if (c.classList.contains('greet')) break; after = c; continue; }
      if (s < seq) break;
      after = c;
    }
    log.insertBefore(b, after);
  }
  function show(m) {
    if (!m.seq || seen[m.seq]) return false;  // shown once, whatever the path it came by
    var b = bubble(m); seen[m.seq] = b; seqs.push(m.seq); seqs.sort(function (a, c) { return a - c; });
    place(b, m.seq); log.scrollTop = log.scrollHeight;
    return true;
  }
  function setStatus(b, text) { var s = b.querySelector('.s'); if (s) s.textContent = text; }

  // -- notifications ---------------------------------------------------------------------
  function beep() {
    if (!cfg.sound) return;
    try {
      var C = window.AudioContext || window.webkitAudioContext, ctx = new C(), o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = 880; g.gain.value = 0.05; o.connect(g); g.connect(ctx.destination); o.start(); o.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no audio */ }
  }
  function setUnread(n) {
    unread = n; badge.textContent = n > 9 ? '9+' : String(n); badge.hidden = !n;
    launcher.setAttribute('aria-label', n ? 'Open chat, ' + n + ' unread' : 'Open chat');
    document.title = n && document.hidden ? '(' + n + ') New message \u2013 ' + baseTitle : baseTitle;
  }
  function markRead() {
    if (!isOpen || document.hidden) return;
    setUnread(0);
    var last = 0; seqs.forEach(function (s) { if (!seen[s].classList.contains('v')) last = s; });
    if (last && socket.connected) socket.emit('read', { seq: last });
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden) markRead(); });

  // -- open / close ----------------------------------------------------------------------
  function setOpen(v, quiet) {
    isOpen = v; panel.hidden = !v; wrap.classList.toggle('open', v); launcher.setAttribute('aria-expanded', String(v));
    launcher.setAttribute('aria-label', v ? 'Close chat' : 'Open chat'); save('open', v);
    if (quiet) return;
    if (v) { markRead(); log.scrollTop = log.scrollHeight; (pre.hidden ? input : pre.querySelector('input') || input).focus(); } else launcher.focus();
  }
  launcher.addEventListener('click', function () { setOpen(!isOpen); });
  closeBtn.addEventListener('click', function () { setOpen(false); });
  wrap.addEventListener('keydown', function (e) { if (e.key === 'Escape' && isOpen) setOpen(false); });

  // -- forms -----------------------------------------------------------------------------
  function field(name, type, label, auto) {
    return el('label', {}, [el('span', { text: label }), el('input', { type: type, name: name, autocomplete: auto, required: '' })]);
  }
  function sendProfile(p, done) {
    for (var k in p) profile[k] = p[k];
    save('profile', profile);
    socket.timeout(8000).emit('profile', p, function (err, res) { if (done) done(!err && res && res.ok, res); });
  }
  function buildPrechat() {
    var want = cfg.prechat_fields || [];
    pre.textContent = '';
    if (!want.length || profile.done) { pre.hidden = true; return; }
    if (want.indexOf('name') >= 0) pre.appendChild(field('name', 'text', 'Your name', 'name'));
    if (want.indexOf('email') >= 0) pre.appendChild(field('email', 'email', 'Your email', 'email'));
    if (want.indexOf('consent') >= 0) pre.appendChild(el('label', { 'class': 'c' }, [el('input', { type: 'checkbox', name: 'consent', required: '' }), el('span', { text: cfg.consent_text })]));
    var row = el('div', { style: 'display:flex;gap:6px' }, [el('button', { 'class': 'k', type: 'submit', text: 'Start chat' })]);
    if (!cfg.prechat_required) {
      row.appendChild(el('button', { 'class': 'k a', type: 'button', text: 'Skip', onclick: function () { profile.done = true; save('profile', profile); pre.hidden = true; composer.hidden = false; input.focus(); } }));
      pre.querySelectorAll('input').forEach(function (i) { i.removeAttribute('required'); });
    }
    pre.appendChild(row); pre.hidden = false; composer.hidden = !!cfg.prechat_required;
  }
  pre.addEventListener('submit', function (e) {
    e.preventDefault();
    var p = { done: true }, f = pre.elements;
    if (f.name) p.name = f.name.value.trim();
    if (f.email && f.email.value.trim()) p.email = f.email.value.trim();
    if (f.consent) p.consent = f.consent.checked;
    sendProfile(p, function (ok, res) {
      if (!ok && res) { notice.textContent = res.message || 'Please check the form.'; return; }
      pre.hidden = true; composer.hidden = false; input.focus();
    });
  });
  function buildAway() {
    away.textContent = '';
    if (avail.available) { away.hidden = true; return; }
    away.appendChild(el('p', { text: cfg.offline_message }));
    if (profile.email) { away.appendChild(el('p', { text: 'We will answer at ' + profile.email + '.' })); away.hidden = false; return; }
    away.appendChild(field('email', 'email', 'Your email', 'email'));
    away.appendChild(el('button', { 'class': 'k', type: 'submit', text: 'Save email' }));
    away.hidden = false;
  }
  away.addEventListener('submit', function (e) {
    e.preventDefault();
    sendProfile({ email: away.elements.email.value.trim() }, function (ok, res) {
      if (!ok) { notice.textContent = (res && res.message) || 'Could not save your email, please try again.'; return; }
      notice.textContent = ''; buildAway();
    });
  });
  function applyAvailability(a) {
    for (var k in a) avail[k] = a[k];
    if ('agents_online' in a && !('available' in a)) avail.available = avail.open !== false && a.agents_online > 0;
    status.textContent = avail.available ? 'We are online' : (avail.open === false ? 'We are closed right now' : 'No one is available right now');
    buildAway();
  }

  function applyLook(c) {
    [panel, launcher].forEach(function (n) { n.style.setProperty('--c', c.color); n.style.setProperty('--t', c.text_color); });
    title.textContent = c.title || 'Chat'; wrap.hidden = false;
  }
  var lastLook = load('look', null);
  if (lastLook && lastLook.color) applyLook(lastLook);

  // -- connection, resync, delivery ------------------------------------------------------
  var socket = io(BASE + '/widget', {
    auth: function (cb) { cb({ widget: KEY, token: token, user_id: USER_ID || undefined, user_hash: USER_HASH || undefined, name: profile.name, email: profile.email, consent: profile.consent }); },
    reconnectionDelayMax: 10000
  });
  function resync() {
    // everything after a point well before the newest message seen: a reply committed
    // just before one we saw is not missed; `seen` shows each message once
    var after = seqs.length > 20 ? seqs[seqs.length - 21] : 0;
    socket.timeout(10000).emit('hello', { after: after }, function (err, res) {
      if (err || !res || !res.ok) { setTimeout(function () { if (socket.connected) resync(); }, 2000); return; }
      token = res.token; save('token', token); cfg = res.config;
      applyLook(cfg); save('look', { color: cfg.color, text_color: cfg.text_color, title: cfg.title });
      input.maxLength = cfg.max_message_chars;
      if (!seqs.length && !log.querySelector('.greet') && cfg.greeting) log.insertBefore(el('div', { 'class': 'm greet', text: cfg.greeting }), log.firstChild);
      var fresh = 0;
      res.messages.forEach(function (m) { if (show(m) && m.author !== 'visitor') fresh++; });
      if (fresh && !isOpen && after) setUnread(unread + fresh);
      buildPrechat(); applyAvailability(res.availability); markRead();
      if (res.more) resync(); else pending.forEach(trySend);
    });
  }
  socket.on('connect', function () { notice.textContent = ''; resync(); });
  socket.on('connect_error', function (err) { if (!socket.active) notice.textContent = 'Chat unavailable: ' + err.message; });
  socket.on('disconnect', function () { status.textContent = 'Reconnecting\u2026'; });
  socket.on('message', function (m) {
    if (!show(m) || m.author === 'visitor') return;
    typingRow.textContent = '';
    if (!isOpen || document.hidden) { setUnread(unread + 1); beep(); } else markRead();
  });
  socket.on('typing', function (t) {
    clearTimeout(agentTypingTimer);
    typingRow.textContent = t.typing ? (t.name || 'Agent') + ' is typing\u2026' : '';
    if (t.typing) agentTypingTimer = setTimeout(function () { typingRow.textContent = ''; }, 6000);
  });
  socket.on('read', function (r) { seqs.forEach(function (s) { if (s <= r.up_to && seen[s].classList.contains('v')) setStatus(seen[s], 'Read'); }); });
  socket.on('availability', applyAvailability);

  var uuid = function () { return crypto.randomUUID ? crypto.randomUUID() : 'x' + Date.now().toString(36) + Math.random().toString(36).slice(2, 12); };
  function persist() { save('pending', pending.map(function (m) { return { client_id: m.client_id, text: m.text, files: m.files, shown: m.shown }; })); }
  function trySend(m) {
    if (!m.el) { m.el = bubble({ author: 'visitor', text: m.text, files: m.shown, pending: true }); log.appendChild(m.el); log.scrollTop = log.scrollHeight; }
    if (!socket.connected || m.inflight) return;
    m.inflight = true; clearTimeout(m.timer);
    socket.timeout(8000).emit('message', { client_id: m.client_id, text: m.text, files: m.files }, function (err, res) {
      m.inflight = false;
      var retry = function (ms) { m.tries = (m.tries || 0) + 1; m.timer = setTimeout(function () { trySend(m); }, ms); };
      if (err || !res) return retry(Math.min(30000, 1000 * Math.pow(2, m.tries || 0)) * (0.8 + Math.random() * 0.4));
      if (res.ok) {
        pending.splice(pending.indexOf(m), 1); persist(); notice.textContent = '';
        if (seen[res.seq]) { m.el.remove(); return; }  // an earlier try's echo is on screen already
        m.el.setAttribute('data-seq', res.seq); setStatus(m.el, 'Sent'); seen[res.seq] = m.el;
        seqs.push(res.seq); seqs.sort(function (a, c) { return a - c; });
        return;
      }
      if (res.error === 'rate_limited') { notice.textContent = res.message; return retry(res.retry_after * 1000); }
      if (res.error === 'unavailable' || res.error === 'not_connected') return retry(2000);
      pending.splice(pending.indexOf(m), 1); persist();
      setStatus(m.el, 'Not sent: ' + (res.message || res.error));
    });
  }
  function queue(text, files, shown) {
    var m = { client_id: uuid(), text: text, files: files || [], shown: shown || [] };
    pending.push(m); persist(); trySend(m);
    typingSent = 0; if (socket.connected) socket.emit('typing', { typing: false });
  }
  composer.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    if (cfg.max_message_chars && text.length > cfg.max_message_chars) { notice.textContent = 'Your message is too long: at most ' + cfg.max_message_chars + ' characters.'; return; }
    input.value = ''; queue(text); input.focus();
  });
  input.addEventListener('keydown', function (e) { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); composer.requestSubmit(); } });
  input.addEventListener('input', function () {
    var now = Date.now();
    if (socket.connected && now - typingSent > 2000) { typingSent = now; socket.emit('typing', { typing: true }); }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typingSent = 0; if (socket.connected) socket.emit('typing', { typing: false }); }, 4000);
  });
  attach.addEventListener('click', function () { file.click(); });
  file.addEventListener('change', function () {
    var f = file.files[0]; file.value = '';
    if (!f) return;
    var okType = (cfg.allowed_file_types || []).some(function (p) { return p === f.type || (p.slice(-2) === '/*' && f.type.indexOf(p.slice(0, -1)) === 0); });
    if (!okType) { notice.textContent = 'Files of this type cannot be sent.'; return; }
    if (f.size > cfg.max_file_bytes) { notice.textContent = 'The file is too large (at most ' + Math.round(cfg.max_file_bytes / 1048576) + ' MB).'; return; }
    notice.textContent = 'Uploading ' + f.name + '\u2026';
    fetch(BASE + '/widget/upload?widget=' + encodeURIComponent(KEY), {
      method: 'POST', body: f, headers: { 'Content-Type': f.type, 'X-Visitor-Token': token || '', 'X-Filename': encodeURIComponent(f.name) }
    }).then(function (r) { return r.json(); }).then(function (res) {
      if (!res.ok) { notice.textContent = res.message; return; }
      notice.textContent = '';
      queue('', [res.ref], [{ filename: res.filename, content_type: res.content_type, url: res.url }]);
    }).catch(function () { notice.textContent = 'The upload failed; please try again.'; });
  });

  pending = pending.map(function (m) { return { client_id: m.client_id, text: m.text, files: m.files, shown: m.shown }; });
  (document.body || document.documentElement).appendChild(host);
  pending.forEach(trySend);
  if (load('open', false)) setOpen(true, true);
}
