/**
 * Drives the workbench in headless Debian chromium through playwright-core: open a folder with our
 * extension under development (optionally running a test module in its extension host), run palette
 * commands, find a webview's frame and read its DOM, take screenshots. Every wait is on a condition.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { format } from 'node:util';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import type { CodeServer } from './codeServer';

export interface WorkbenchOptions {
  folder: string;
  /** Our extension folder, loaded as under development; omit to use what is installed. */
  extensionDevelopmentPath?: string;
  /** A module exporting run(): the workbench runs it in the extension host and reports the exit code. */
  extensionTestsPath?: string;
  /** Do not echo the extension host's console (for runs whose failure is expected). */
  quiet?: boolean;
  viewport?: { width: number; height: number };
}

export interface Workbench {
  readonly page: Page;
  /** Resolves with the extension host's exit code when extensionTestsPath was given. */
  readonly testExit: Promise<number>;
  runCommand(title: string): Promise<void>;
  /** Picks a colour theme through "Preferences: Color Theme", as a person would. */
  setTheme(label: string): Promise<void>;
  /** Quick Open: types `query` (a name or a relative path), picks the row whose label starts with `label`. */
  quickOpen(query: string, label?: string): Promise<void>;
  /** Types into the open quick input (a picker or the simple file dialog) until the text sticks. */
  fillQuickInput(text: string): Promise<void>;
  /** Clicks the quick-input row whose text starts with `label`. */
  pickRow(label: string): Promise<void>;
  /** The frame of the webview whose document has `selector`, waiting up to timeoutMs. */
  webviewFrame(selector: string, timeoutMs?: number): Promise<Frame>;
  screenshot(path: string): Promise<void>;
  close(): Promise<void>;
}

/** Workbench chatter that reaches the automation log offline and says nothing about our tests. */
const NOISE = /^\[(AgentHost|AgentHost:remote|ChatModelSelection|AccountPolicyGate|Service Worker|reconnection-grace-time)\]|^(Resolving|Resolved) connection token|^Creating a socket|^Updating additional builtin|ENOTFOUND (open-vsx|mobile\.events)|vsda|^\s+at .*workbench\.js|^Canceled/;

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export async function openWorkbench(server: CodeServer, opts: WorkbenchOptions): Promise<Workbench> {
  const u = new URL(server.url);
  const remote = (p: string) => `vscode-remote://${u.host}${p}`;
  const payload: [string, string][] = [['skipWelcome', 'true']];
  if (opts.extensionDevelopmentPath) payload.push(['extensionDevelopmentPath', remote(opts.extensionDevelopmentPath)]);
  if (opts.extensionTestsPath) payload.push(['extensionTestsPath', remote(opts.extensionTestsPath)]);
  const browser: Browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  // Clipboard permissions: tests read what "Copy Name" wrote.
  const page = await (await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 800 }, permissions: ['clipboard-read', 'clipboard-write'] })).newPage();
  let exit: (code: number) => void = () => undefined;
  const testExit = new Promise<number>((r) => (exit = r));
  // The workbench reports the test extension host's console and exit through these (smoke-test driver).
  await page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
    const line = format(...args);
    if (opts.quiet || NOISE.test(line)) return;
    (type === 'error' ? process.stderr : process.stdout).write(line + '\n');
  });
  await page.exposeFunction('codeAutomationExit', (code: number) => exit(code));
  await page.goto(`${u.origin}/?folder=${encodeURIComponent(opts.folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });

  const input = page.locator('.quick-input-widget input');
  // Keys typed while a webview has focus go to the webview, so quick input is opened by clicking the
  // title bar's command center, as a person would.
  const fillQuickInput = async (text: string) => {
    await input.waitFor({ state: 'visible', timeout: 30_000 });
    // The widget may reset its value just after it shows: fill until the value sticks.
    for (let i = 0; i < 50; i++) {
      await input.fill(text);
      await page.waitForTimeout(100);
      if ((await input.inputValue()) === text) return;
    }
    throw new Error(`could not type ${JSON.stringify(text)} into quick input`);
  };
  /** Clicks the quick-input row whose text starts with `label` (Enter would take whatever row is first). */
  const pickRow = async (label: string) => {
    const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: new RegExp(`^\\s*${escaped}`) }).first();
    await row.click({ timeout: 30_000 });
  };
  const openQuickInput = async (text: string) => {
    await page.keyboard.press('Escape'); // close any quick input a failed step left open
    await page.locator('.titlebar-center .command-center-quick-pick:visible').first().click({ timeout: 30_000 });
    await fillQuickInput(text);
  };
  const wb: Workbench = {
    page,
    testExit,
    fillQuickInput,
    pickRow,
    async runCommand(title) {
      await openQuickInput('>' + title);
      await pickRow(title);
    },
    async setTheme(label) {
      await wb.runCommand('Preferences: Color Theme');
      await fillQuickInput(label);
      await pickRow(label);
      await input.waitFor({ state: 'hidden', timeout: 30_000 });
    },
    async quickOpen(query, label = query) {
      await openQuickInput(query);
      await pickRow(label);
    },
    async webviewFrame(selector, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        for (const f of page.frames()) {
          if (await f.$(selector).catch(() => null)) return f;
        }
        await page.waitForTimeout(100);
      }
      throw new Error(`no webview frame with ${selector} within ${timeoutMs} ms`);
    },
    async screenshot(path) {
      mkdirSync(dirname(path), { recursive: true });
      await page.screenshot({ path });
    },
    async close() {
      await browser.close().catch(() => undefined);
    },
  };
  // Let the extension host come up and our contributions register before tests drive the UI.
  await page.locator('.statusbar').waitFor({ timeout: 90_000 });
  return wb;
}
