// plane-orch dashboard: reads this server's own API every few seconds and renders it.
// Every value from a ticket goes in as text (textContent); only `description`, which the
// server sanitises, is set as HTML, and the page's Content-Security-Policy stops scripts in
// it even so.
'use strict';

(() => {
  const REFRESH_MS = 5000;
  const DONE_SHOWN = 20;
  const TOKEN_KEY = 'plane-orch-token';
  const $ = (sel) => document.querySelector(sel);

  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let timer = null;
  let doneCount = -1;
  let health = null;
  const cards = new Map(); // id -> {key, node}
  const drafts = new Map(); // id -> summary being edited
  const budgets = new Map(); // id -> budget typed before approving
  const peeks = new Set(); // ids whose screen peek is open
  const busy = new Set(); // ids with an action in flight

  // ---- building elements, text only -----------------------------------------------------

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids) {
      if (kid !== null && kid !== undefined && kid !== false) e.append(kid);
    }
    return e;
  }

  // Only web links become links: a ticket's URL could say `javascript:`.
  function safeUrl(u) {
    if (typeof u !== 'string' || !u) return null;
    try {
      const url = new URL(u, location.href);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(href, text) {
    const safe = safeUrl(href);
    return safe
      ? el('a', { class: 'id', href: safe, target: '_blank', rel: 'noopener noreferrer', text })
      : el('span', { class: 'id', text });
  }

  // ---- times ------------------------------------------------------------------------------

  function age(at) {
    const ms = Date.now() - new Date(at).getTime();
    if (!Number.isFinite(ms)) return '';
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s ago`;
    const m = Math.round(s / 60);
    if (m < 60) return `${m} min ago`;
    const h = Math.round(m / 60);
    if (h < 48) return `${h} h ago`;
    return `${Math.round(h / 24)} days ago`;
  }

  function localTime(at) {
    const d = new Date(at);
    return Number.isNaN(d.getTime()) ? String(at) : d.toLocaleString();
  }

  // A time as an age, with the local time in its tooltip; kept fresh by `tickAges`.
  function when(label, at) {
    if (!at) return null;
    const t = el('time', { datetime: at, title: localTime(at), 'data-age': '', text: age(at) });
    return el('li', {}, `${label} `, t);
  }

  function tickAges() {
    for (const t of document.querySelectorAll('time[data-age]')) {
      t.textContent = age(t.getAttribute('datetime'));
    }
  }

  // ---- the API ----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, `the server does not answer (${e.message})`);
    }
    const text = await resp.text();
    let value = null;
    try {
      value = text ? JSON.parse(text) : null;
    } catch (_) {
      value = null;
    }
    if (resp.status === 401) {
      askToken(token ? 'That token was refused. Enter the right one.' : 'This server needs its API token.');
      throw new ApiError(401, 'the API token is missing or wrong');
    }
    if (!resp.ok) {
      const detail = (value && (value.detail || (value.error && value.error.message))) || `${resp.status} ${resp.statusText}`;
      throw new ApiError(resp.status, detail);
    }
    return value;
  }

  // ---- the token ----------------------------------------------------------------------

  function askToken(why) {
    stopTimer();
    const dialog = $('#token-dialog');
    $('#token-why').textContent = why;
    if (!dialog.open) dialog.showModal();
    $('#token-input').focus();
  }

  $('#token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    token = $('#token-input').value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    $('#token-input').value = '';
    $('#token-dialog').close();
    refresh();
  });
  // Escape would leave the page without a token and with nothing to show: keep asking.
  $('#token-dialog').addEventListener('cancel', (ev) => ev.preventDefault());

  // ---- notices ------------------------------------------------------------------------

  // Good news fades after a while; errors stay until the next notice.
  let noticeTimer = null;
  function notify(text, kind) {
    const n = $('#notice');
    n.textContent = text;
    n.className = `notice ${kind || ''}`;
    n.hidden = false;
    clearTimeout(noticeTimer);
    if (kind === 'ok') noticeTimer = setTimeout(() => { n.hidden = true; }, 10000);
  }

  // ---- the header ---------------------------------------------------------------------

  function renderHealth(h) {
    const ul = $('#health');
    ul.replaceChildren();
    if (!h) {
      ul.append(el('li', { class: 'bad', text: 'server not answering' }));
      return;
    }
    const plane = h.plane || {};
    ul.append(el('li', { class: plane.configured ? 'ok' : 'bad', text: plane.configured ? 'Plane configured' : 'Plane not configured' }));
    if (plane.last_poll_at) {
      const t = el('time', { datetime: plane.last_poll_at, title: localTime(plane.last_poll_at), 'data-age': '', text: age(plane.last_poll_at) });
      ul.append(el('li', { class: plane.last_poll_ok ? 'ok' : 'bad' }, `last poll ${plane.last_poll_ok ? 'ok' : 'failed'} `, t));
    } else {
      ul.append(el('li', { text: 'no poll by this server' }));
    }
    const s = h.sessions || {};
    ul.append(el('li', { class: s.available ? 'ok' : 'bad', text: `sessions (${s.backend || '?'}) ${s.available ? 'up' : 'down'}` }));
    if (h.state && !h.state.ok) ul.append(el('li', { class: 'bad', text: 'state file unreadable' }));

    const counts = $('#counts');
    counts.replaceChildren();
    for (const [name, n] of [
      ['pending', h.pending_count],
      ['active', h.active_count],
      ['completed', h.completed_count],
      ['done', h.done_count],
    ]) {
      counts.append(el('a', { href: `#sec-${name}`, text: `${n ?? 0} ${name}` }));
    }
  }

  // ---- what a ticket shows --------------------------------------------------------------

  function activityOf(t) {
    const a = t.activity;
    // A session that ended without a summary is lost, whatever it last reported.
    if (t.session && (t.session.alive === false || t.session_lost_at)) {
      return { state: 'lost', question: null, since: t.session_lost_at || null };
    }
    if (a && typeof a === 'object' && a.state) {
      return { state: String(a.state), question: a.question || a.message || null, since: a.since || null };
    }
    if (t.waiting) return { state: 'waiting', question: t.waiting.message, since: t.waiting.since };
    if (t.session && t.session.alive) return { state: 'running', question: null, since: null };
    if (!t.session) return { state: 'no session', question: null, since: null };
    return { state: 'unknown', question: null, since: null };
  }

  const sessionLost = (t) => Boolean(t.session && (t.session.alive === false || t.session_lost_at));

  function money(n) {
    return typeof n === 'number' && Number.isFinite(n) ? `$${n.toFixed(2)}` : null;
  }

  function costLine(t) {
    const c = t.cost;
    if (!c || typeof c !== 'object') return null;
    const used = money(c.usd);
    const budget = money(c.budget_usd);
    if (!used && !budget) return null;
    const li = el('li', { class: 'cost' }, `cost ${used || '?'}${budget ? ` of ${budget}` : ''}`);
    if (used && budget && c.budget_usd > 0) {
      li.append(' ', el('meter', { min: 0, max: c.budget_usd, high: c.budget_usd * 0.8, value: Math.min(c.usd, c.budget_usd), title: `${Math.round((c.usd / c.budget_usd) * 100)} % of the budget` }));
    }
    return li;
  }

  function opLine(t) {
    const op = t.op;
    if (!op) return null;
    if (typeof op !== 'object') return el('p', { class: 'warn', text: `Interrupted: ${op}` });
    const what = op.kind || op.op || op.name || op.step || 'an operation';
    const since = op.started_at || op.at || op.since;
    const detail = op.detail || op.message || op.error || op.hint;
    return el('p', { class: 'warn' }, `Interrupted: ${what}`, since ? ` (${age(since)})` : '', detail ? ` — ${detail}` : '');
  }

  function list(items, fmt) {
    const ul = el('ul');
    for (const i of items) ul.append(el('li', { text: fmt(i) }));
    return ul;
  }

  function branchBlock(t) {
    const b = t.branch && typeof t.branch === 'object' ? t.branch : {};
    const name = b.name || (t.session && t.session.branch);
    const box = el('div', { class: 'branch' });
    if (name) box.append(el('p', {}, 'Branch ', el('code', { text: name })));
    const commits = b.commits;
    if (Array.isArray(commits)) {
      box.append(el('p', { text: `${commits.length} commit${commits.length === 1 ? '' : 's'}` }));
      if (commits.length) {
        box.append(list(commits, (c) => (typeof c === 'object' && c ? [String(c.sha || c.id || '').slice(0, 8), c.subject || c.message || c.summary || ''].filter(Boolean).join(' ') : String(c))));
      }
    } else if (typeof commits === 'number') {
      box.append(el('p', { text: `${commits} commit${commits === 1 ? '' : 's'}` }));
    }
    const ds = b.diffstat;
    if (typeof ds === 'string' && ds) box.append(el('pre', { class: 'screen', text: ds }));
    else if (ds && typeof ds === 'object') {
      box.append(el('p', { text: `${ds.files ?? ds.files_changed ?? '?'} files changed, +${ds.insertions ?? 0} −${ds.deletions ?? 0}` }));
    }
    const warnings = Array.isArray(b.warnings) ? b.warnings : [];
    for (const w of warnings) {
      box.append(el('p', { class: 'warn', text: `⚠ ${typeof w === 'object' && w ? w.message || w.code || JSON.stringify(w) : w}` }));
    }
    return box.childNodes.length ? box : null;
  }

  function head(t) {
    const labels = Array.isArray(t.labels) ? t.labels : [];
    return el('header', {},
      link(t.url, t.id),
      el('h3', { text: t.title || '(no title)' }),
      t.trigger_type ? el('span', { class: 'badge', text: t.trigger_type }) : null,
      t.priority && t.priority !== 'none' ? el('span', { class: 'badge', text: t.priority }) : null,
      ...labels.map((l) => el('span', { class: 'badge', text: String(l) })));
  }

  function errorLine(t) {
    return t.last_error ? el('p', { class: 'error', role: 'alert', text: t.last_error }) : null;
  }

  // ---- actions ----------------------------------------------------------------------------

  function action(button, id, run) {
    return async () => {
      if (busy.has(id)) return;
      busy.add(id);
      button.disabled = true;
      try {
        const msg = await run();
        if (msg) notify(msg, 'ok');
      } catch (e) {
        if (e.status !== 401) notify(`${id}: ${e.message}`, 'bad');
      } finally {
        busy.delete(id);
        button.disabled = false;
        refresh();
      }
    };
  }

  const enc = encodeURIComponent;

  function approveRow(t) {
    const input = el('input', { type: 'number', min: '0', step: '0.5', inputmode: 'decimal', placeholder: 'optional', 'aria-label': `Budget in dollars for ${t.id} (optional)`, value: budgets.get(t.id) || null });
    input.addEventListener('input', () => budgets.set(t.id, input.value));
    const approve = el('button', { type: 'button', class: 'primary', 'data-role': 'approve', text: 'Approve' });
    approve.addEventListener('click', action(approve, t.id, async () => {
      const n = parseFloat(input.value);
      const body = input.value.trim() && Number.isFinite(n) && n > 0 ? { budget_usd: n } : undefined;
      const r = await api('POST', `/api/approve/${enc(t.id)}`, body);
      budgets.delete(t.id);
      return `${t.id} approved: session ${r && r.session_id ? r.session_id : '(none)'} runs`;
    }));
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') approve.click();
    });
    const skip = el('button', { type: 'button', class: 'danger', 'data-role': 'skip', text: 'Skip' });
    skip.addEventListener('click', action(skip, t.id, async () => {
      if (!window.confirm(`Skip ${t.id} “${t.title}”? It leaves the queue until it is triggered again in Plane.`)) return null;
      await api('DELETE', `/api/tickets/${enc(t.id)}`);
      return `${t.id} skipped`;
    }));
    return el('div', { class: 'row' }, el('label', { class: 'budget' }, 'Budget $', input), approve, skip);
  }

  function peekBlock(t) {
    const pre = el('pre', { class: 'screen', 'data-role': 'screen', 'aria-live': 'off', text: 'loading…' });
    const d = el('details', { class: 'peek', 'data-id': t.id }, el('summary', { text: 'Peek at the screen' }), pre);
    if (peeks.has(t.id)) {
      d.open = true;
      loadPeek(t.id, pre);
    }
    d.addEventListener('toggle', () => {
      if (d.open) {
        peeks.add(t.id);
        loadPeek(t.id, pre);
      } else {
        peeks.delete(t.id);
      }
    });
    return d;
  }

  async function loadPeek(id, pre) {
    try {
      const r = await api('GET', `/api/tickets/${enc(id)}/screen?lines=40`);
      pre.textContent = r.alive ? r.text || '(the screen is blank)' : '(the session is not running)';
    } catch (e) {
      pre.textContent = e.status === 501 ? e.message : `cannot read the screen: ${e.message}`;
    }
  }

  function activeBlock(t) {
    const a = activityOf(t);
    const parts = [];
    const meta = el('ul', { class: 'meta' },
      el('li', {}, el('span', { class: `badge ${a.state.replace(/[^a-z]/g, '')}`, 'data-role': 'activity', text: a.state }), a.since ? ` since ${age(a.since)}` : ''),
      when('approved', t.approved_at),
      costLine(t),
      t.session ? el('li', {}, 'session ', el('code', { text: t.session.name })) : null);
    parts.push(meta);
    if (a.question) parts.push(el('p', { class: 'question', text: a.question }));
    if (t.session) {
      const cmd = `plane-orch attach ${t.id}`;
      const copy = el('button', { type: 'button', text: 'Copy' });
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(cmd);
          notify(`Copied: ${cmd}`, 'ok');
        } catch (_) {
          notify(`Copy it by hand: ${cmd}`);
        }
      });
      parts.push(el('div', { class: 'row' }, el('code', { class: 'cmd', text: cmd }), copy));
      parts.push(peekBlock(t));
    }
    parts.push(budgetRow(t));
    if (sessionLost(t)) {
      const restart = el('button', { type: 'button', class: 'primary', 'data-role': 'restart', text: 'Restart session' });
      restart.addEventListener('click', action(restart, t.id, async () => {
        await api('POST', `/api/restart/${enc(t.id)}`);
        return `${t.id}: the session was restarted`;
      }));
      parts.push(el('div', { class: 'row' }, el('span', { class: 'warn', text: 'The session has ended without a summary.' }), restart));
    }
    return parts;
  }

  // Raise (or set) the budget of a running ticket: a session held at its budget goes on.
  function budgetRow(t) {
    const current = t.activity && t.activity.budget_usd != null ? t.activity.budget_usd : t.cost && t.cost.budget_usd;
    const input = el('input', { type: 'number', min: '0', step: '0.5', inputmode: 'decimal', 'data-role': 'budget-input', 'aria-label': `New budget in dollars for ${t.id}`, placeholder: current != null ? String(current) : 'none', value: budgets.get(`raise-${t.id}`) || null });
    input.addEventListener('input', () => budgets.set(`raise-${t.id}`, input.value));
    const set = el('button', { type: 'button', 'data-role': 'budget', text: 'Set budget' });
    set.addEventListener('click', action(set, t.id, async () => {
      const n = Number(input.value);
      if (!input.value.trim() || !Number.isFinite(n) || n <= 0) throw new Error('type a budget in dollars, more than 0');
      await api('POST', `/api/budget/${enc(t.id)}`, { budget_usd: n });
      budgets.delete(`raise-${t.id}`);
      return `${t.id}: the budget is now $${n.toFixed(2)}`;
    }));
    return el('div', { class: 'row' }, el('label', { class: 'budget' }, 'Budget $', input), set);
  }

  function completedBlock(t) {
    const area = el('textarea', { id: `summary-${t.id}`, 'data-role': 'summary' });
    area.value = drafts.has(t.id) ? drafts.get(t.id) : t.summary || '';
    area.addEventListener('input', () => drafts.set(t.id, area.value));
    const update = el('button', { type: 'button', class: 'primary', 'data-role': 'update', text: 'Update Plane' });
    update.addEventListener('click', action(update, t.id, async () => {
      const summary = area.value.trim();
      if (!summary) throw new ApiError(400, 'the summary is empty: say what was done');
      const r = await api('POST', `/api/update-plane/${enc(t.id)}`, { summary });
      drafts.delete(t.id);
      return `${t.id} posted to Plane${r && r.state_updated ? ' and moved' : ''}`;
    }));
    return [
      el('ul', { class: 'meta' }, when('completed', t.completed_at), when('approved', t.approved_at)),
      branchBlock(t),
      el('label', { class: 'muted', for: `summary-${t.id}`, text: `Summary of ${t.id} (posted to Plane as a comment)` }),
      area,
      el('div', { class: 'row' }, update),
    ];
  }

  function card(t) {
    const body = [head(t)];
    if (t.status === 'pending') {
      body.push(el('ul', { class: 'meta' }, when('queued', t.queued_at || t.created_at), t.uuid ? when('created in Plane', t.created_at) : null));
    }
    body.push(errorLine(t), opLine(t));
    if (t.status === 'pending') {
      const desc = el('div', { class: 'desc', 'data-role': 'description' });
      // Sanitised by the server; the CSP forbids any script it might still carry.
      desc.innerHTML = t.description || '';
      if (!desc.textContent.trim() && !desc.querySelector('img')) desc.textContent = t.description_text || '(no description)';
      body.push(desc, approveRow(t));
    } else if (t.status === 'active') {
      body.push(...activeBlock(t));
    } else if (t.status === 'completed') {
      body.push(...completedBlock(t));
    }
    return el('article', { class: 'card', id: `t-${t.id}`, 'data-id': t.id, 'data-status': t.status }, ...body);
  }

  // Cards are rebuilt only when their ticket changed, keeping drafts, open peeks and focus.
  function renderSection(name, tickets) {
    const sec = $(`#sec-${name}`);
    const box = sec.querySelector('.list');
    sec.querySelector('.n').textContent = `(${tickets.length})`;
    sec.classList.toggle('has', tickets.length > 0);
    const nodes = [];
    for (const t of tickets) {
      const key = JSON.stringify(t);
      let c = cards.get(t.id);
      if (!c || c.key !== key) {
        const node = card(t);
        const old = c && c.node;
        const active = document.activeElement;
        const focused = old && old.contains(active) ? active.getAttribute('data-role') : null;
        const caret = focused && active.tagName === 'TEXTAREA' ? [active.selectionStart, active.selectionEnd] : null;
        c = { key, node };
        cards.set(t.id, c);
        if (old) old.replaceWith(node);
        if (focused) {
          const again = node.querySelector(`[data-role="${focused}"]`);
          if (again) {
            again.focus();
            if (caret && again.setSelectionRange) again.setSelectionRange(caret[0], caret[1]);
          }
        }
      } else if (c.node.querySelector('details.peek[open]')) {
        loadPeek(t.id, c.node.querySelector('[data-role=screen]'));
      }
      nodes.push(c.node);
    }
    for (const [i, node] of nodes.entries()) {
      if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null);
    }
    while (box.children.length > nodes.length) box.lastElementChild.remove();
  }

  function renderDone(tickets) {
    const sec = $('#sec-done');
    const ol = sec.querySelector('.list');
    const last = [...tickets].sort((a, b) => String(b.done_at || '').localeCompare(String(a.done_at || ''))).slice(0, DONE_SHOWN);
    sec.querySelector('.n').textContent = tickets.length > DONE_SHOWN ? `(last ${DONE_SHOWN} of ${tickets.length})` : `(${tickets.length})`;
    sec.classList.toggle('has', tickets.length > 0);
    ol.replaceChildren(...last.map((t) => el('li', { id: `t-${t.id}` },
      link(t.url, t.id), ' ', el('span', { text: t.title || '' }), ' ',
      t.done_at ? el('time', { class: 'muted', datetime: t.done_at, title: age(t.done_at), text: localTime(t.done_at) }) : null,
      t.last_error ? el('p', { class: 'error', text: t.last_error }) : null)));
  }

  function renderProblems(tickets) {
    const sec = $('#problems');
    const ul = sec.querySelector('.list');
    const items = [];
    if (health && health.state && !health.state.ok) items.push(el('li', { text: `State file: ${health.state.error || 'unreadable'}` }));
    if (health && health.plane && health.plane.last_poll_ok === false) items.push(el('li', { text: `Last poll: ${health.plane.last_poll_error || 'failed'}` }));
    for (const t of tickets) {
      if (t.last_error) items.push(el('li', {}, el('a', { href: `#t-${t.id}`, text: t.id }), `: ${t.last_error}`));
    }
    ul.replaceChildren(...items);
    sec.hidden = items.length === 0;
  }

  // ---- refreshing -------------------------------------------------------------------------

  function stopTimer() {
    clearTimeout(timer);
    timer = null;
  }

  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing;
    stopTimer();
    refreshing = (async () => {
      try {
        health = await api('GET', '/health').catch(() => null);
        renderHealth(health);
        const open = await api('GET', '/api/tickets');
        const by = { pending: [], active: [], completed: [] };
        for (const t of open) if (by[t.status]) by[t.status].push(t);
        for (const [name, ts] of Object.entries(by)) renderSection(name, ts);
        let done = null;
        // Done tickets are read from the file: only asked for when their number changes.
        const n = health ? health.done_count : -2;
        if (n !== doneCount) {
          done = await api('GET', '/api/tickets?status=done');
          doneCount = n;
          renderDone(done);
        }
        renderProblems(open);
        $('#updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
        document.body.dataset.loaded = 'true';
        timer = setTimeout(refresh, REFRESH_MS);
      } catch (e) {
        if (e.status !== 401) {
          notify(`Cannot refresh: ${e.message}`, 'bad');
          timer = setTimeout(refresh, REFRESH_MS);
        }
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  $('#refresh').addEventListener('click', () => refresh());
  document.addEventListener('keydown', (ev) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
    if (ev.key === 'r' && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) refresh();
  });
  setInterval(tickAges, 15000);
  refresh();
})();
