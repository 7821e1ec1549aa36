// The dashboard in a real browser (Debian's chromium driven by playwright-core) on a running
// daemon: the device's highlighted state follows the guest unloading and loading its driver,
// the transition log names the xenstore observations, the I/O chart fills, a daemon crash shows
// as a recovery once the page reconnects, and nothing is fetched from outside the daemon.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { SMALL_WORKLOAD, daemonWorld, type DaemonWorld } from '../e2e/support/daemon-world';

jest.setTimeout(90_000);

// Evaluated in the page, not here.
declare const document: { querySelector(selector: string): { textContent: string | null } | null };

const ARTIFACTS = path.join(__dirname, '../../test-artifacts/dashboard');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic', '--disable-dev-shm-usage'];

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('the dashboard in a browser', () => {
  let world: DaemonWorld;
  let context: BrowserContext;
  let page: Page;
  let url: string;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'xenblkd-chromium-'));
  const outside: string[] = [];
  const pageErrors: string[] = [];
  const active = (key: string) => `[data-card="${key}"] .svgbox g.state.active`;
  const activeIds = (key: string) => page.$$eval(active(key), (gs) => gs.map((g) => g.getAttribute('data-state')!));

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    world = await daemonWorld({ guests: 1, http: `127.0.0.1:${await freePort()}` });
    url = await world.dashboardUrl();
    context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1500, height: 1100 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (r) => {
      if (!r.url().startsWith(url)) outside.push(r.url());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(url);
  });

  afterAll(async () => {
    await context?.close();
    await world?.close();
    fs.rmSync(profile, { recursive: true, force: true });
  });

  it('shows the device connected, its statechart highlighted, and I/O rates', async () => {
    const key = world.disks[0].key;
    await page.waitForSelector(`${active(key)}[data-state="vbd.active.lifecycle.attached.connected"]`);
    expect(await activeIds(key)).toEqual(expect.arrayContaining(['vbd.active', 'vbd.active.lifecycle', 'vbd.active.lifecycle.attached', 'vbd.active.lifecycle.attached.connected', 'vbd.active.unplug.idle']));
    expect(await activeIds(key)).not.toContain('vbd.active.lifecycle.initWait');
    await expect(page.textContent('#status')).resolves.toBe('live');
    await expect(page.textContent(`#list [data-device="${key}"] .badge`)).resolves.toBe('attached.connected');
    const report = await world.workload(world.disks[0], { ...SMALL_WORKLOAD, durationMs: 3000 });
    expect(report.errors).toBe(0);
    await page.waitForFunction((k) => /^[1-9]\d* IOPS/.test(document.querySelector(`[data-card="${k}"] .rate`)?.textContent ?? ''), key, { timeout: 10_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, '1-connected.png'), fullPage: true });
    // The whole statechart at once, scaled to the card.
    await page.click(`[data-card="${key}"] button[data-zoom="fit"]`);
    const sizes = await page.$eval(`[data-card="${key}"] .svgbox`, (box) => ({ box: box.clientWidth, svg: box.querySelector('svg')!.getBoundingClientRect().width }));
    expect(sizes.svg).toBeLessThanOrEqual(sizes.box + 1);
    await page.screenshot({ path: path.join(ARTIFACTS, '1b-connected-fit.png'), fullPage: true });
    await page.click(`[data-card="${key}"] button[data-zoom="1"]`);
  });

  it('follows the guest unloading and loading its driver, live', async () => {
    const { key, domid, devid } = world.disks[0];
    world.host.guest(domid).unloadDriver(devid);
    await page.waitForSelector(`${active(key)}[data-state="vbd.active.lifecycle.closed"]`);
    expect(await activeIds(key)).not.toContain('vbd.active.lifecycle.attached.connected');
    await expect(page.textContent(`[data-card="${key}"] .badge.phase`)).resolves.toBe('closed');
    const log = await page.$$eval(`[data-card="${key}"] table.log tbody tr`, (rows) => rows.map((r) => r.textContent ?? ''));
    expect(log.some((r) => r.includes('frontend.changed') && r.includes('state=5 Closing'))).toBe(true);
    expect(log.some((r) => r.includes('frontend.changed') && r.includes('state=6 Closed'))).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, '2-driver-unloaded.png'), fullPage: true });

    world.host.guest(domid).loadDriver(devid);
    await page.waitForSelector(`${active(key)}[data-state="vbd.active.lifecycle.attached.connected"]`);
    expect(await activeIds(key)).not.toContain('vbd.active.lifecycle.closed');
    await expect(page.textContent(`[data-card="${key}"] .facts`)).resolves.toMatch(/backend 4 Connected · frontend 4 Connected · online yes · ring order \d/);
    await page.screenshot({ path: path.join(ARTIFACTS, '3-driver-reloaded.png'), fullPage: true });
  });

  it('shows a daemon crash as a recovery once the page has reconnected', async () => {
    const key = world.disks[0].key;
    await world.daemon.kill();
    await page.waitForSelector('#status.down');
    await world.daemon.start();
    await page.waitForFunction((k) => document.querySelector('#recoveries')?.textContent?.includes(k) ?? false, key, { timeout: 15_000 });
    await page.waitForSelector('#status.live');
    await page.waitForSelector(`${active(key)}[data-state="vbd.active.lifecycle.attached.connected"]`);
    await expect(page.textContent('#recoveries')).resolves.toContain('recovered from the event store');
    await page.screenshot({ path: path.join(ARTIFACTS, '4-recovered.png'), fullPage: true });
  });

  it('does not hold up a graceful stop while the page is open', async () => {
    await page.waitForSelector('#status.live');
    const t0 = Date.now();
    expect(await world.daemon.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(4000);
    await page.waitForSelector('#status.down');
  });

  it('fetched nothing from outside the daemon and raised no script error', () => {
    expect(outside).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
