import {
  deviceIdentity,
  deviceKey,
  parseBackendWatchPath,
} from '../../src/machines/xenbus/identity';
import { deviceOptions, xenbusRealizeKeys } from '../../src/machines/xenbus/realize-keys';

describe('device identity', () => {
  it('derives the backend and frontend paths', () => {
    expect(deviceIdentity({ backendDomid: 0, frontendDomid: 3, devid: 51712 })).toEqual({
      backendDomid: 0,
      frontendDomid: 3,
      devid: 51712,
      backendType: 'vbd',
      frontendType: 'vbd',
      backendPath: '/local/domain/0/backend/vbd/3/51712',
      frontendPath: '/local/domain/3/device/vbd/51712',
    });
    expect(deviceIdentity({ backendDomid: 7, frontendDomid: 3, devid: 5, backendType: 'qdisk' }).backendPath).toBe(
      '/local/domain/7/backend/qdisk/3/5',
    );
    expect(deviceKey(3, 51712)).toBe('3/51712');
  });
});

describe('parseBackendWatchPath', () => {
  it.each([
    ['/local/domain/0/backend/vbd/3/51712', { frontendDomid: 3, devid: 51712, subpath: '' }],
    ['/local/domain/0/backend/vbd/3/51712/state', { frontendDomid: 3, devid: 51712, subpath: 'state' }],
    ['/local/domain/0/backend/vbd/3/51712/a/b', { frontendDomid: 3, devid: 51712, subpath: 'a/b' }],
  ])('splits %s', (path, expected) => {
    expect(parseBackendWatchPath(path, 0, 'vbd')).toEqual(expected);
  });

  it.each([
    '/local/domain/0/backend/vbd',
    '/local/domain/0/backend/vbd/3',
    '/local/domain/0/backend/vbdx/3/51712',
    '/local/domain/1/backend/vbd/3/51712',
    '/local/domain/0/backend/vbd/03/51712',
    '/local/domain/0/backend/vbd/3/xvda',
    '/local/domain/0/backend/vbd/32752/1',
    '/local/domain/0/backend/vbd/3/4294967296',
  ])('ignores %s', (path) => {
    expect(parseBackendWatchPath(path, 0, 'vbd')).toBeNull();
  });
});

describe('generic realize keys (xen_device_realize)', () => {
  it('links backend and frontend and marks the device online', () => {
    const id = deviceIdentity({ backendDomid: 0, frontendDomid: 3, devid: 51712 });
    expect(xenbusRealizeKeys(id)).toEqual({
      backend: {
        frontend: '/local/domain/3/device/vbd/51712',
        'frontend-id': '3',
        'hotplug-status': 'connected',
        online: '1',
      },
      frontendIfMissing: { backend: '/local/domain/0/backend/vbd/3/51712', 'backend-id': '0', state: '1' },
    });
  });

  it('takes every other backend key as a device option (xen_bus_backend_create)', () => {
    expect(
      deviceOptions({ state: '1', online: '1', frontend: 'f', 'frontend-id': '3', 'hotplug-status': 'x', params: 'p', dev: 'xvda' }),
    ).toEqual({ params: 'p', dev: 'xvda' });
  });
});
