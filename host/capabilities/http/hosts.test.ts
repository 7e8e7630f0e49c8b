import { describe, expect, it } from 'vitest';
import { HostAllowList, matches, parseHostPattern, parseTarget } from './hosts.js';

const allow = (...hosts: string[]) => HostAllowList.of(hosts);

describe('network.hosts patterns', () => {
  it('parse names, ports, wildcards and IP literals, normalised', () => {
    expect(parseHostPattern('API.Example.com')).toEqual({ kind: 'exact', host: 'api.example.com' });
    expect(parseHostPattern('127.0.0.1:8443')).toEqual({ kind: 'exact', host: '127.0.0.1', port: 8443 });
    expect(parseHostPattern('*.blob.core.windows.net')).toEqual({ kind: 'subdomains', host: 'blob.core.windows.net' });
    expect(parseHostPattern('[0:0::1]:8080')).toEqual({ kind: 'exact', host: '[::1]', port: 8080 });
    expect(parseHostPattern('bücher.de')).toEqual({ kind: 'exact', host: 'xn--bcher-kva.de' });
  });

  it.each([
    ['granted.com@evil.com'], ['user:pw@granted.com'], ['https://api.example.com'], ['api.example.com/path'], ['api.example.com?q'],
    ['api.example.com#f'], ['api%2eexample.com'], ['api.example.com\\evil.com'], ['api.example.com.'], ['a.com:'], ['a.com:0'],
    ['a.com:65536'], ['a.com:+80'], ['a.com:8080:9'], ['::1'], ['[::1'], [''], [' a.com'], ['*'], ['*.com'], ['*.127.0.0.1'], ['a.*.com'], ['*a.com'],
  ])('refuse %j', (text) => {
    expect(typeof parseHostPattern(text)).toBe('string');
    expect(() => allow(text)).toThrow(/^network\.hosts: /);
  });
});

describe('host matcher', () => {
  it('exact names match case-insensitively, on the scheme\'s default port only', () => {
    const a = allow('api.example.com');
    expect(a.check('https', 'api.example.com')).toEqual({ host: 'api.example.com', port: 443 });
    expect(a.check('https', 'API.EXAMPLE.COM:443')).toEqual({ host: 'api.example.com', port: 443 });
    expect(a.check('http', 'api.example.com')).toEqual({ host: 'api.example.com', port: 80 });
    expect(a.check('http', 'api.example.com:443')).toBeUndefined();
    expect(a.check('https', 'api.example.com:8443')).toBeUndefined();
    expect(a.check('https', 'example.com')).toBeUndefined();
    expect(a.check('https', 'x.api.example.com')).toBeUndefined();
    expect(a.check('https', 'api.example.com.evil.net')).toBeUndefined();
  });

  it('an explicit port is that port, for either scheme, and no other', () => {
    const a = allow('127.0.0.1:8443');
    expect(a.check('https', '127.0.0.1:8443')).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(a.check('http', '127.0.0.1:8443')).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(a.check('https', '127.0.0.1')).toBeUndefined();
    expect(a.check('https', '127.0.0.1:8444')).toBeUndefined();
  });

  it('a wildcard covers subdomains only, never the domain itself or a look-alike', () => {
    const a = allow('*.blob.core.windows.net');
    expect(a.check('https', 'acct.blob.core.windows.net')).toEqual({ host: 'acct.blob.core.windows.net', port: 443 });
    expect(a.check('https', 'a.b.blob.core.windows.net')).toBeDefined();
    expect(a.check('https', 'blob.core.windows.net')).toBeUndefined();
    expect(a.check('https', 'evilblob.core.windows.net')).toBeUndefined();
    expect(a.check('https', 'blob.core.windows.net.evil.com')).toBeUndefined();
    expect(a.check('https', 'acct.blob.core.windows.net:8443')).toBeUndefined();
  });

  it('refuses userinfo, paths and escapes in the request authority (granted.com@evil.com)', () => {
    const a = allow('granted.com', 'evil.com');
    for (const bad of ['granted.com@evil.com', 'evil.com@granted.com', 'user@granted.com', 'granted.com/x', 'granted.com?x', 'granted.com#x', 'granted.com\\@evil.com', 'gr%61nted.com', 'granted.com:', 'granted.com:0', 'granted.com.', ' granted.com', 'granted.com:80:80']) {
      expect(a.check('http', bad)).toBeUndefined();
    }
  });

  it('IP literals: legacy IPv4 spellings normalise to what is connected to; a wildcard never matches an IP', () => {
    const a = allow('127.0.0.1:8080');
    expect(a.check('http', '127.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(a.check('http', '0x7f.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(a.check('http', '127.0.0.2:8080')).toBeUndefined();
    expect(a.check('http', 'localhost:8080')).toBeUndefined();
    expect(typeof parseHostPattern('*.0.0.1')).toBe('string');
    expect(matches({ kind: 'subdomains', host: '0.0.1' }, 'http', { host: '127.0.0.1', port: 80 })).toBe(false);
  });

  it('IPv6 needs brackets and matches in canonical form', () => {
    const a = allow('[::1]:8080');
    expect(a.check('http', '[0:0:0:0:0:0:0:1]:8080')).toEqual({ host: '[::1]', port: 8080 });
    expect(a.check('http', '[::1]:8081')).toBeUndefined();
    expect(a.check('http', '::1:8080')).toBeUndefined();
    expect(a.check('http', '[::2]:8080')).toBeUndefined();
    expect(allow('[::1]').check('https', '[::1]')).toEqual({ host: '[::1]', port: 443 });
  });

  it('targets normalise names to lowercase punycode', () => {
    expect(parseTarget('https', 'BÜCHER.de')).toEqual({ host: 'xn--bcher-kva.de', port: 443 });
    expect(allow('xn--bcher-kva.de').check('https', 'bücher.de')).toBeDefined();
  });
});
