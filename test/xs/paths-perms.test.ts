import { canonicalize, isChildOrSelf, isValidNodePath, isValidWatchPath, parentOf, relativeTo } from '../../src/io/xs/paths';
import { formatPerm, parsePerm } from '../../src/io/xs/perms';
import { permFor } from '../../src/io/xs/server/access';

describe('xenstore paths', () => {
  it('accepts well-formed absolute paths only', () => {
    for (const p of ['/', '/a', '/local/domain/0/backend/vbd/1/51712', '/a-b_c@d/9']) expect(isValidNodePath(p)).toBe(true);
    for (const p of ['', 'a', '/a/', '//a', '/a//b', '/a b', '/a.b', '/é', '/a\0b']) expect(isValidNodePath(p)).toBe(false);
  });

  it('bounds lengths as xenstored does', () => {
    expect(isValidNodePath('/' + 'a'.repeat(2047))).toBe(true);
    expect(isValidNodePath('/' + 'a'.repeat(2048))).toBe(false);
    // Below /local/domain/<id>/ the relative part may use the whole relative limit.
    expect(isValidNodePath('/local/domain/5/' + 'a'.repeat(2048))).toBe(true);
    expect(isValidNodePath('/local/domain/5/' + 'a'.repeat(2049))).toBe(false);
  });

  it('makes relative paths relative to the domain', () => {
    expect(canonicalize('device/vbd', 7)).toBe('/local/domain/7/device/vbd');
    expect(canonicalize('/abs', 7)).toBe('/abs');
    expect(canonicalize('@releaseDomain', 7)).toBe('@releaseDomain');
    expect(relativeTo('/local/domain/7/device/vbd', '/local/domain/7')).toBe('device/vbd');
    expect(relativeTo('/local/domain/7', '/local/domain/7')).toBe('');
  });

  it('knows parents and descendants', () => {
    expect(parentOf('/a/b/c')).toBe('/a/b');
    expect(parentOf('/a')).toBe('/');
    expect(isChildOrSelf('/a/b', '/a')).toBe(true);
    expect(isChildOrSelf('/a', '/a')).toBe(true);
    expect(isChildOrSelf('/ab', '/a')).toBe(false);
    expect(isChildOrSelf('/anything', '/')).toBe(true);
    expect(isValidWatchPath('@introduceDomain')).toBe(true);
    expect(isValidWatchPath('relative')).toBe(false);
  });
});

describe('xenstore permissions', () => {
  it('parses and formats n/r/w/b entries', () => {
    expect(parsePerm('b12')).toEqual({ access: 'b', domid: 12 });
    expect(formatPerm({ access: 'r', domid: 3 })).toBe('r3');
    for (const bad of ['x1', 'r', 'r-1', 'r70000', 'r1a', ' r1']) expect(parsePerm(bad)).toBeUndefined();
  });

  it('grants the owner and dom0 everything, others their entry or the default', () => {
    const perms = [parsePerm('n5')!, parsePerm('r7')!, parsePerm('w8')!];
    expect(permFor(0, undefined, perms)).toBe(7);
    expect(permFor(5, undefined, perms)).toBe(7);
    expect(permFor(7, undefined, perms)).toBe(1);
    expect(permFor(8, undefined, perms)).toBe(2);
    expect(permFor(9, undefined, perms)).toBe(0);
    // A domain targeting 5 (SET_TARGET) acts as its owner.
    expect(permFor(9, 5, perms)).toBe(7);
    expect(permFor(9, undefined, [parsePerm('b1')!])).toBe(3);
  });
});
