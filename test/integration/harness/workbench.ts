/**
 * Drives the workbench in headless Debian chromium through playwright-core: open a folder with our
 * extension under development (optionally running a test module in its extension host), run palette
 * commands, find a webview's frame and read its DOM, take screenshots. Every wait is on a condition.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { format } from 'node:util';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import { processesWith, until } from '../waits';
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
  /**
   * Opens a file through Quick Open, typed as its absolute path (`path` is absolute or relative to
   * the opened folder), and resolves once Quick Open has taken the pick. A file written during the
   * test is found as surely as one that was there at start (see the comment inside).
   */
  quickOpen(path: string): Promise<void>;
  /** Types into the open quick input (a picker or the simple file dialog) until the text sticks. */
  fillQuickInput(text: string): Promise<void>;
  /** Clicks the quick-input row whose text starts with `label`, once it is listed. */
  pickRow(label: string): Promise<void>;
  /** Types `path` into code-server's simple file dialog titled `title` and accepts it; resolves once the dialog has closed. */
  acceptFileDialog(title: string, path: string): Promise<void>;
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
  const rows = page.locator('.quick-input-list .monaco-list-row');
  /** The quick input's rows as a person reads them, for errors that say what was there instead. */
  const rowsShown = async () => JSON.stringify((await rows.allInnerTexts().catch(() => [])).map((t) => t.replace(/\s+/g, ' ').trim()).slice(0, 8));
  const rowStarting = (label: string) => rows.filter({ hasText: new RegExp(`^\\s*${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) }).first();
  /** Clicks the quick-input row whose text starts with `label` (Enter would take whatever row is first). */
  const pickRow = async (label: string) => {
    const row = rowStarting(label);
    let shown = '';
    await until(
      `a quick-input row starting with ${JSON.stringify(label)}`,
      async () => ((await row.count()) > 0 ? true : ((shown = await rowsShown()), undefined)),
      30_000,
      () => `rows ${shown}`,
    );
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
    async quickOpen(path) {
      // Typed as an absolute path, Quick Open stats that one file (getAbsolutePathFileResult) instead
      // of searching the folder. A search by name is answered from the file list of the previous Quick
      // Open for as long as this one's list is still loading (FileQueryCacheState.cacheKey), and the
      // rows are not refreshed once it has loaded: under load, a file written after the previous Quick
      // Open stayed "No matching results" (issue 14, item 0).
      const file = isAbsolute(path) ? path : join(opts.folder, path);
      await openQuickInput(file);
      await pickRow(basename(file));
      let shown = '';
      await until(
        `Quick Open to take ${file}`,
        async () => ((await input.isVisible()) ? ((shown = await rowsShown()), undefined) : true),
        30_000,
        () => `the quick input still open with rows ${shown}`,
      );
    },
    async acceptFileDialog(title, path) {
      // The dialog reads the folder that holds the typed path as the value changes, and an OK clicked
      // before it has is checked against the folder it still shows, which can leave it open. So OK is
      // clicked once the dialog lists that folder as Node sees it: the path's own row when it exists,
      // else the folder's first sub-folder (folders are listed first, by name). Should the dialog
      // still stay open, the path is typed and accepted again.
      const dir = dirname(path);
      const expected = existsSync(path)
        ? basename(path)
        : readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort((a, b) => a.localeCompare(b))[0];
      const dialog = page.locator('.quick-input-widget').filter({ has: page.locator('.quick-input-title', { hasText: title }) });
      let shown = '';
      let value = '';
      for (let attempt = 1; attempt <= 3; attempt++) {
        await fillQuickInput(path);
        await until(
          `the dialog "${title}" to list ${dir}${expected ? ` (a row ${JSON.stringify(expected)})` : ''} for ${path}`,
          async () => {
            const texts = (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
            shown = JSON.stringify(texts.slice(0, 8));
            value = await input.inputValue();
            // The dialog may put its own folder back into the box after the path stuck (it finished
            // reading the folder it opened on): type the path again rather than wait on a value that is gone.
            if (value !== path) {
              await input.fill(path);
              return undefined;
            }
            return expected === undefined || texts.includes(expected) ? true : undefined;
          },
          30_000,
          () => `value ${JSON.stringify(value)}, rows ${shown}`,
        );
        await page.locator('.quick-input-widget .quick-input-action .monaco-button').first().click();
        if (await dialog.waitFor({ state: 'hidden', timeout: 10_000 }).then(() => true, () => false)) return;
      }
      throw new Error(`the dialog "${title}" did not accept ${path}; it shows: ${await dialog.first().innerText().catch(() => '?')}`);
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
  await page.locator('.statusbar').waitFor({ timeout: 90_000 });
  // Our extension's contributions are registered some time after the workbench shows (the development
  // extension is scanned late). A checkpoint opened before that opens in the text editor, and the
  // editor history then reopens it there; palette commands are missing too. The palette lists a
  // contributed command once they are registered, but a palette does not refresh while it is open:
  // each one either lists the command or shows it has none, and is reopened until it lists it.
  // (Skipped while a test module runs in the extension host: it may use quick input itself.)
  if (!opts.extensionTestsPath) {
    const title = 'JAX Serve: Show Log';
    const ours = rowStarting(title);
    // Without it, the palette answers "No matching commands" or offers "similar commands".
    const none = rows.filter({ hasText: /No matching commands|similar commands/ });
    let shown = '';
    await until(
      `the command palette to list ${JSON.stringify(title)} (our extension's contributions)`,
      async () => {
        await openQuickInput('>' + title);
        await ours.or(none).first().waitFor({ timeout: 30_000 }).catch(() => undefined);
        const found = (await ours.count()) > 0;
        shown = await rowsShown();
        await page.keyboard.press('Escape');
        return found ? true : undefined;
      },
      90_000,
      () => `rows ${shown}`,
    );
  }
  return wb;
}

/** Each UI suite's afterEach: a failed test leaves a screenshot named for it and the server's last log lines. */
export async function recordFailure(test: { readonly state?: string; readonly title: string } | undefined, wb: Workbench | undefined, server: CodeServer | undefined, root: string, logChars = 6000): Promise<void> {
  if (test?.state !== 'failed' || !wb) return;
  await wb.screenshot(join(root, 'test-results', `failed-${test.title.replace(/\W+/g, '-')}.png`)).catch(() => undefined);
  if (server) process.stderr.write(server.logs().slice(-logChars) + '\n');
}

/**
 * Each UI suite's after: the window closed, the server stopped, every process whose command line
 * holds `leftover` (an engine the suite started, should a failed test leave it) killed, then the
 * workspace removed.
 */
export async function closeAll(wb: Workbench | undefined, server: CodeServer | undefined, ws: string | undefined, leftover?: string): Promise<void> {
  await wb?.close();
  await server?.stop();
  for (const pid of leftover ? processesWith(leftover) : []) process.kill(pid, 'SIGKILL');
  if (ws) rmSync(ws, { recursive: true, force: true });
}
