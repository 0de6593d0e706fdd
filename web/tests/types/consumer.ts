// A small consumer of the package, type-checked with `tsc --noEmit`: the declarations must
// accept idiomatic use and reject the mistakes marked @ts-expect-error.
import init, {
  Lanewire,
  SendFlags,
  EndReason,
  configKeys,
  type ConnectOptions,
  type ConnectionInfo,
  type Message,
  type QuickStatus,
  type StatusEvent,
  type LanewireError,
} from 'lanewire';

export async function demo(): Promise<void> {
  await init();
  const options: ConnectOptions = {
    signalingUrl: 'wss://example.com/ws',
    identity: 'str:alice',
    token: 'lws1.x',
    iceServers: [{ urls: 'stun:stun.example.com:3478' }, { urls: ['turn:t.example.com'], username: 'u', credential: 'p' }],
    config: { FakePacketLossSend: 10, FakePacketLagSend: 30, SendRateMax: 1_000_000 },
  };
  const lw: Lanewire = await Lanewire.connect(options);
  lw.onstatus = (ev: StatusEvent) => {
    if (ev.oldState === 'none' && ev.info.listenSocket !== null) lw.accept(ev.conn);
    if (ev.state === 'problemDetectedLocally' && ev.info.endReason === EndReason.MiscP2PRendezvous) {
      console.log(ev.info.endDebug);
    }
  };
  lw.onreadable = (conn: number) => {
    const msgs: Message[] = lw.receive(conn);
    for (const m of msgs) console.log(m.data.byteLength, m.reliable, m.lane);
  };
  lw.onstatus = null;
  const listen: number = lw.listenP2P(7);
  const conn: number = lw.connectP2P('str:bob', 7, { NagleTime: 0 });
  const n: number = lw.send(conn, 'hello');
  lw.send(conn, new Uint8Array([1, 2]), SendFlags.Unreliable | SendFlags.NoNagle, 0);
  const group: number = lw.createPollGroup();
  lw.setPollGroup(conn, group);
  const fromGroup: Message[] = lw.receiveOnPollGroup(group, 10);
  const q: QuickStatus = lw.quickStatus(conn);
  const info: ConnectionInfo = lw.connectionInfo(conn);
  const state: 'connected' | string = info.state;
  lw.setConfig('FakePacketJitterSendAvg', 5);
  const v: number | string = lw.configValue('SendRateMax');
  lw.close(conn, 1000, 'done', true);
  lw.closeListenSocket(listen);
  console.log(n, fromGroup.length, q.pingMs, q.lanes.length, state, v, configKeys()[0].name);
  try {
    lw.send(conn, 'x');
  } catch (e) {
    const err = e as LanewireError;
    if (err.code === 'NoConnection') console.log(err.message);
  }
  // @ts-expect-error: config keys are checked
  lw.setConfig('NoSuchKey', 1);
  // @ts-expect-error: data is bytes or a string
  lw.send(conn, 42);
  // @ts-expect-error: options need a signaling URL
  await Lanewire.connect({ identity: 'str:x' });
  // @ts-expect-error: states are a closed set
  const bad: ConnectionInfo['state'] = 'open';
  console.log(bad);
  lw.shutdown();
}
