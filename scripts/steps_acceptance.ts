#!/usr/bin/env bun
/**
 * The browser and MCP halves of the steps acceptance (examples/steps_acceptance.py runs them; each prints one JSON
 * object on its last line):
 *
 *   bun scripts/steps_acceptance.ts dashboard <server_url> <operation_id> [--cancel-at STEP]
 *     Opens the operation page of a running step run in headless Chromium (Debian's, as the browser tests launch it),
 *     reads the step chart twice (it must have points and grow between the reads: live), then, once the run has
 *     trained --cancel-at steps (default 100), presses Cancel and accepts the confirmation. Prints the two reads, the
 *     progress line and `clicked_at` (ms since the epoch, taken just before the click).
 *
 *   bun scripts/steps_acceptance.ts mcp <operation_id> <from_step> <to_step> [max_points]
 *     Spawns the stdio MCP server (`bun run src/mcp`, TRAINWATCH_URL from the environment) as the agents do and calls
 *     get_operation_metrics with that step range; prints the reply.
 */
import { connect } from "../agents/mcp_client.ts";
import { chartHooks, launchChromium } from "../tests/fixtures/browser.ts";

const CHART_WAIT_MS = 30_000;

async function dashboard(url: string, id: string, cancelAt: number) {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${url}/#/op/${id}`);
    const charts = chartHooks(page);
    const read = async () => {
      const s = await charts.snapshot("loss");
      return { points: s.x.length, last_step: s.x.at(-1) ?? null };
    };
    // The last step the loss chart draws (-1 before any), as an expression evaluated in the page.
    const LAST = `(window.__trainwatch?.chart("loss")?.x.at(-1) ?? -1)`;
    const waitLast = (atLeast: number, timeout: number) =>
      page.waitForFunction(`${LAST} >= ${atLeast}`, null, { timeout, polling: 50 });
    await waitLast(0, CHART_WAIT_MS);
    const first = await read();
    // Live: the chart grows from the stream, the page is never reloaded.
    await waitLast((first.last_step ?? -1) + 1, CHART_WAIT_MS);
    const second = await read();
    await waitLast(cancelAt - 1, CHART_WAIT_MS * 4);
    const progress = await page.textContent("#head-progress");
    const chartLastStepAtClick = (await read()).last_step;
    page.once("dialog", (d) => void d.accept());
    const clickedAt = Date.now();
    await page.click("#cancel");
    await page.waitForSelector('[data-control="dashboard"]', { timeout: 10_000 });
    return { first, second, progress, chart_last_step_at_click: chartLastStepAtClick, clicked_at: clickedAt, errors };
  } finally {
    await browser.close();
  }
}

async function mcp(id: string, from: number, to: number, maxPoints: number) {
  const session = await connect("steps-acceptance");
  try {
    return await session.call("get_operation_metrics", {
      operation_id: id,
      resolution: "step",
      from_step: from,
      to_step: to,
      max_points: maxPoints,
    });
  } finally {
    await session.close();
  }
}

const [cmd, ...args] = process.argv.slice(2);
let out: unknown;
if (cmd === "dashboard" && args.length >= 2) {
  const at = args.indexOf("--cancel-at");
  out = await dashboard(args[0]!, args[1]!, at >= 0 ? Number(args[at + 1]) : 100);
} else if (cmd === "mcp" && args.length >= 3) {
  out = await mcp(args[0]!, Number(args[1]), Number(args[2]), Number(args[3] ?? 200));
} else {
  console.error(
    "usage: bun scripts/steps_acceptance.ts dashboard <url> <id> [--cancel-at STEP] | mcp <id> <from> <to> [max_points]",
  );
  process.exit(2);
}
console.log(JSON.stringify(out));
