// Drives the system Chromium through one dashboard scenario for tests/ui_dashboard.rs.
// Usage: node dashboard.mjs SCENARIO, with BASE_URL (the running serve), SHOTS (a folder for
// screenshots), CHROMIUM (the browser) and PARAMS (JSON) in the environment. Prints one line
// of JSON with what it saw; the Rust test asserts on it and on the server's side effects.
// Any failed step throws, and node exits non-zero with the reason on stderr.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scenario = process.argv[2];
const base = process.env.BASE_URL;
const shots = process.env.SHOTS;
const params = JSON.parse(process.env.PARAMS || '{}');
const STEP = 15000;

// Counts every script that runs from ticket text: each payload bumps window.__hits, and
// every CSP refusal is counted too (proof the policy was what stopped it).
const HOOK = () => {
  window.__hits = 0;
  window.__cspBlocked = 0;
  document.addEventListener('securitypolicyviolation', () => {
    window.__cspBlocked += 1;
  });
};

const profile = mkdtempSync(join(tmpdir(), 'plane-orch-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: params.width || 1100, height: params.height || 800 },
  colorScheme: params.dark ? 'dark' : 'light',
});
const out = { scenario };
const errors = [];

async function newPage() {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  // The page must never reach another origin.
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:') && r.url() !== 'about:blank') {
      errors.push(`request to another origin: ${r.url()}`);
    }
  });
  await page.addInitScript(HOOK);
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${scenario}-${name}.png`), fullPage: true });
}

const card = (page, id, status) => page.locator(`article.card[data-id="${id}"]${status ? `[data-status="${status}"]` : ''}`);

async function open(page) {
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-loaded]');
}

const scenarios = {
  async approve() {
    const page = await newPage();
    await open(page);
    const id = params.id;
    await card(page, id, 'pending').waitFor();
    await shot(page, 'pending');
    await card(page, id, 'pending').locator('input[type=number]').fill('5');
    await card(page, id, 'pending').locator('[data-role=approve]').click();
    const active = card(page, id, 'active');
    await active.waitFor();
    out.notice = await page.locator('#notice').textContent();
    out.activity = await active.locator('[data-role=activity]').textContent();
    out.attach = await active.locator('code.cmd').textContent();
    await active.locator('details.peek > summary').click();
    const screen = active.locator('[data-role=screen]');
    await page.waitForFunction(
      ([sel, want]) => (document.querySelector(sel)?.textContent || '').includes(want),
      [`article.card[data-id="${id}"] [data-role=screen]`, params.peek],
    );
    out.peek = await screen.textContent();
    // The peek stays open across refreshes.
    await page.locator('#refresh').click();
    await page.waitForTimeout(300);
    out.peekOpenAfterRefresh = await active.locator('details.peek').evaluate((d) => d.open);
    await shot(page, 'active');
    // Raise the budget from the page.
    await active.locator('[data-role=budget-input]').fill('12.5');
    await active.locator('[data-role=budget]').click();
    await page.waitForFunction(() => (document.querySelector('#notice')?.textContent || '').includes('budget is now'));
    out.budgetNotice = await page.locator('#notice').textContent();
  },

  async update() {
    const page = await newPage();
    await open(page);
    const id = params.id;
    const c = card(page, id, 'completed');
    await c.waitFor();
    out.before = await c.locator('[data-role=summary]').inputValue();
    await c.locator('[data-role=summary]').fill(params.summary);
    // A refresh while editing keeps the edit.
    await page.locator('#refresh').click();
    await page.waitForTimeout(300);
    out.keptAcrossRefresh = await c.locator('[data-role=summary]').inputValue();
    await shot(page, 'completed');
    await c.locator('[data-role=update]').click();
    await page.locator(`#sec-done li#t-${id}`).waitFor();
    await c.waitFor({ state: 'detached' });
    out.notice = await page.locator('#notice').textContent();
    out.doneLink = await page.locator(`#sec-done li#t-${id} a`).getAttribute('href');
    await shot(page, 'done');
  },

  async skip() {
    const page = await newPage();
    await open(page);
    const id = params.id;
    await card(page, id, 'pending').waitFor();
    // First answer no: nothing changes. Then, by keyboard only, answer yes.
    let answer = false;
    const asked = [];
    page.on('dialog', (d) => {
      asked.push(d.message());
      return answer ? d.accept() : d.dismiss();
    });
    await card(page, id).locator('[data-role=skip]').click();
    await page.waitForTimeout(300);
    out.stillThere = await card(page, id).count();
    answer = true;
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 60 && !reached; i += 1) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(
        (want) => document.activeElement?.dataset.role === 'skip'
          && document.activeElement.closest('article')?.dataset.id === want,
        id,
      );
    }
    out.reachedByTab = reached;
    await page.keyboard.press('Enter');
    await card(page, id).waitFor({ state: 'detached' });
    out.asked = asked;
    out.notice = await page.locator('#notice').textContent();
    await shot(page, 'after');
  },

  async hostile() {
    // 1. The real server's answer, whatever its sanitiser leaves.
    const page = await newPage();
    await open(page);
    const id = params.id;
    const c = card(page, id, 'pending');
    await c.waitFor();
    await page.waitForTimeout(500);
    out.served = {
      hits: await page.evaluate(() => window.__hits),
      title: await c.locator('h3').textContent(),
      idLinks: await c.locator('a.id').count(),
    };
    await shot(page, 'served');

    // 2. Raw hostile HTML handed to the page as if the sanitiser had let all of it through:
    // the page's own walls (innerHTML never runs <script>; the CSP blocks handlers) must hold.
    const raw = params.raw;
    await page.route('**/api/tickets', async (route) => {
      const resp = await route.fetch();
      const list = await resp.json();
      for (const t of list) if (t.id === id) Object.assign(t, raw);
      await route.fulfill({ response: resp, json: list });
    });
    await page.reload();
    await page.waitForSelector('body[data-loaded]');
    await c.waitFor();
    await page.waitForTimeout(800);
    out.raw = {
      hits: await page.evaluate(() => window.__hits),
      cspBlocked: await page.evaluate(() => window.__cspBlocked),
      handlerInDom: await c.locator('[data-role=description] [onerror]').count(),
      title: await c.locator('h3').textContent(),
      jsLinks: await c.locator('a.id[href^="javascript:"]').count(),
    };
    // A `javascript:` link left in a description does nothing when followed either.
    const jsLink = c.locator('[data-role=description] a[href^="javascript:"]');
    if (await jsLink.count()) {
      await jsLink.first().click();
      await page.waitForTimeout(300);
      out.raw.hitsAfterClick = await page.evaluate(() => window.__hits);
    }
    await shot(page, 'raw');

    // 3. The hook does count: the same payload in a page without those walls runs.
    const ctl = await context.newPage();
    await ctl.setContent('<div id="d"></div>');
    await ctl.evaluate((html) => {
      window.__hits = 0;
      document.getElementById('d').innerHTML = html;
    }, raw.description);
    await ctl.waitForTimeout(500);
    out.control = { hits: await ctl.evaluate(() => window.__hits) };
  },

  async token() {
    const page = await newPage();
    await page.goto(`${base}/`);
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor({ state: 'visible' });
    out.firstAsk = await page.locator('#token-why').textContent();
    out.cardsBefore = await page.locator('article.card').count();
    await shot(page, 'prompt');
    await page.locator('#token-input').fill(params.wrong);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /refused/.test(document.querySelector('#token-why').textContent)
      && document.querySelector('#token-dialog').open);
    out.secondAsk = await page.locator('#token-why').textContent();
    out.cardsAfterWrong = await page.locator('article.card').count();
    await shot(page, 'refused');
    await page.locator('#token-input').fill(params.token);
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-loaded]');
    await page.locator('article.card').first().waitFor();
    out.cardsAfterRight = await page.locator('article.card').count();
    out.stored = await page.evaluate(() => sessionStorage.getItem('plane-orch-token'));
    await page.reload();
    await page.waitForSelector('body[data-loaded]');
    out.askedAfterReload = await dialog.evaluate((d) => d.open);
    await shot(page, 'accepted');
  },

  async narrow() {
    const page = await newPage();
    // Fields the server may add (activity, cost, branch, op) shown as it would send them.
    if (params.extra) {
      await page.route('**/api/tickets', async (route) => {
        const resp = await route.fetch();
        const list = await resp.json();
        for (const t of list) if (params.extra[t.id]) Object.assign(t, params.extra[t.id]);
        await route.fulfill({ response: resp, json: list });
      });
    }
    await open(page);
    await page.locator('article.card').first().waitFor();
    for (const d of await page.locator('details.peek').all()) await d.locator('summary').click();
    await page.waitForTimeout(500);
    out.width = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      body: document.body.scrollWidth,
    }));
    out.cards = await page.locator('article.card').count();
    out.done = await page.locator('#sec-done li').count();
    out.problems = await page.locator('#problems li').allTextContents();
    out.cost = await page.locator('li.cost').allTextContents();
    out.activities = await page.locator('[data-role=activity]').allTextContents();
    out.branch = await page.locator('.branch').allTextContents();
    out.background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const name = params.name || (params.dark ? 'dark' : 'light');
    await shot(page, name);
    // The first screenful at its real size too, to read it.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(shots, `${scenario}-${name}-top.png`) });
    await page.locator('#sec-active').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(shots, `${scenario}-${name}-active.png`) });
    if (params.restart) {
      const c = card(page, params.restart, 'active');
      await c.locator('[data-role=restart]').click();
      await page.waitForFunction(
        (sel) => ['running', 'starting'].includes(document.querySelector(sel)?.textContent),
        `article.card[data-id="${params.restart}"] [data-role=activity]`,
      );
      out.restarted = await c.locator('[data-role=activity]').textContent();
    }
  },
};

try {
  if (!scenarios[scenario]) throw new Error(`no scenario ${scenario}`);
  await scenarios[scenario]();
  out.errors = errors;
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
