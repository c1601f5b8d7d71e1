/**
 * Remote mode against a real server process, through a TCP proxy the test controls, in a terminal:
 * a cut shorter than the resume grace keeps the session and its refs; a server restart loses the
 * session, the REPL says which refs were lost and goes on in a new session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPython, hasServer, hasTmux, replMain } from './test-support/env';
import { mintToken, type ServerProcess, startServer } from './test-support/server-process';
import { TcpProxy } from './test-support/tcp-proxy';
import { Tmux, type TmuxPane } from './test-support/tmux';

const ready = hasPython() && hasTmux() && hasServer();

describe.runIf(ready)('trestle-repl --url (remote) in a terminal', () => {
  let server: ServerProcess;
  let proxy: TcpProxy;
  let tmux: Tmux;
  let pane: TmuxPane;

  /** Types a line and waits for `expected` to show up after it. */
  async function expectAfter(text: string, expected: RegExp, timeoutMs = 10_000): Promise<string> {
    const marker = `py> ${text}`;
    pane.line(text);
    const screen = await pane.waitFor((s) => {
      const at = s.lastIndexOf(marker);
      return at !== -1 && expected.test(s.slice(at + marker.length));
    }, timeoutMs);
    return screen.slice(screen.lastIndexOf(marker) + marker.length);
  }

  beforeAll(async () => {
    server = await startServer(['--resume-grace-ms', '20000']);
    proxy = await TcpProxy.start(server.port);
    tmux = new Tmux();
    pane = tmux.start(
      [process.execPath, replMain, '--url', `ws://127.0.0.1:${proxy.port}/rpc`, '--no-history'],
      { env: { TRESTLE_TOKEN: mintToken('remote-pty', 'basic'), NO_COLOR: '1' } },
    );
    await pane.waitFor(/^py>\s*$/m, 20_000);
  });

  afterAll(async () => {
    tmux?.close();
    await proxy?.close();
    await server?.stop('SIGKILL');
  });

  it('opens a session on the server and works with refs', async () => {
    expect(pane.screen()).toMatch(/Trestle REPL: remote ws:\/\/127\.0\.0\.1:\d+\/rpc, session s1/);
    await expectAfter('await py.math.sqrt(16)', /^\n4\n/);
    await expectAfter("p = await py.re.compile('\\\\d+')", /^\n<ref re\.Pattern #[0-9a-f]{4} session s1>\n/);
    await expectAfter("await (await p.match('42')).group()", /^\n'42'\n/);
    const session = await expectAfter('.session', /tenant +remote-pty/);
    expect(session).toMatch(/session s1\n {2}id +s_[0-9a-f]{32}/);
    expect(session).toMatch(/tier +basic/);
  });

  it('survives a network blip shorter than the grace: same session, same refs', async () => {
    const connections = proxy.connections;
    proxy.cut(1_500);
    await pane.waitFor(/connection lost \(.+\); reconnecting\.\.\./);
    const screen = await pane.waitFor(/reconnected: session s1 resumed with its \d+ refs/, 15_000);
    expect(screen).not.toContain('could not be kept');
    expect(proxy.connections).toBeGreaterThan(connections);
    await expectAfter("await (await p.match('7 days')).group()", /^\n'7'\n/);
    await expectAfter('.refs', /#[0-9a-f]{4} +re\.Pattern +p +/);
  });

  it('after a server restart, reports the lost refs and goes on in a new session', async () => {
    await server.stop('SIGKILL');
    server = await startServer(['--resume-grace-ms', '20000']);
    proxy.target = server.port;
    const screen = await pane.waitFor(/now in new session s2[\s\S]*lost refs/, 20_000);
    expect(screen).toMatch(/session s1 could not be kept \(SESSION_NOT_FOUND: .+\); now in new session s2/);
    expect(screen).toMatch(/lost refs \(\d+\): .*p <ref re\.Pattern #[0-9a-f]{4} session s1 lost>/);
    await expectAfter('await py.math.sqrt(81)', /^\n9\n/);
    await expectAfter('p', /^\n<ref re\.Pattern #[0-9a-f]{4} session s1 lost>\n/);
    await expectAfter("await p.match('1')", /REF_NOT_FOUND: /);
    await expectAfter("q = await py.re.compile('x+')", /^\n<ref re\.Pattern #[0-9a-f]{4} session s2>\n/);
    await expectAfter('.session', /session s2\n/);
  });

  it('cancels a remote call with Ctrl-C (rpc.cancel) and ends the session on exit', async () => {
    pane.line('await py.time.sleep(30)');
    const started = Date.now();
    pane.keys('C-c');
    await pane.waitFor(/py> await py\.time\.sleep\(30\)\ncancelled\n/, 5_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expectAfter('await py.math.sqrt(4)', /^\n2\n/);
    pane.line('.exit');
    await pane.waitFor(/session s2 ended \(logout\) after/);
  });
});
