// Binds a port through the stand-in libxenevtchn, takes one event, then either keeps the port
// or unbinds it, and never closes the handle: whether the process can still exit is the question.
import koffi = require('koffi');
import { firstValueFrom } from 'rxjs';
import { RealEventChannel } from '../../../src/io/real';

async function main(): Promise<void> {
  const [library, mode] = process.argv.slice(2);
  const ec = new RealEventChannel({ library });
  const p = await ec.allocUnbound(1);
  koffi.load(library).func('void fake_evtchn_inject(uint32_t port)')(p.localPort);
  await firstValueFrom(p.events$);
  process.stdout.write('event\n');
  if (mode === 'unbind') await p.unbind();
  // Fires only if something else keeps the process alive (an armed poll).
  setTimeout(() => process.stdout.write('alive\n'), 300).unref();
}

void main();
