import { GNTST } from '../../src/io/ports';
import { GTF, checkGrant, gntstName } from '../../src/io/sim/grant-rules';

describe('grant rules (what Xen allows a grantee)', () => {
  const layout = { frames: 100, grantFrames: 4 };
  const P = GTF.permit_access;

  it.each([
    ['a read of a grant for the caller', P, 0, 10, 0, false, GNTST.okay],
    ['a write of a writable grant', P, 0, 10, 0, true, GNTST.okay],
    ['a read of a read-only grant', P | GTF.readonly, 0, 10, 0, false, GNTST.okay],
    ['a write of a read-only grant', P | GTF.readonly, 0, 10, 0, true, GNTST.general_error],
    ['a grant for another domain', P, 3, 10, 0, false, GNTST.general_error],
    ['an invalid entry', GTF.invalid, 0, 10, 0, false, GNTST.general_error],
    ['an accept-transfer entry', 2, 0, 10, 0, false, GNTST.general_error],
    ['a transitive entry (not supported)', 3, 0, 10, 0, false, GNTST.general_error],
    ['a grant still marked in use', P | GTF.reading | GTF.writing, 0, 10, 0, true, GNTST.okay],
    ['a frame beyond the memory', P, 0, 100, 0, false, GNTST.bad_page],
    ['a frame of the grant table itself', P, 0, 3, 0, false, GNTST.bad_page],
  ])('%s', (_what, flags, grantee, frame, caller, write, status) => {
    expect(checkGrant(flags, grantee, frame, caller, write, layout)).toBe(status);
  });

  it('names statuses as Xen does', () => {
    expect(gntstName(GNTST.bad_gntref)).toBe('GNTST_bad_gntref');
    expect(gntstName(-99)).toBe('GNTST -99');
  });
});
