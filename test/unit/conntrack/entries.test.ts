import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConntrackLine, parseConntrackList } from '../../../src/conntrack/entries.ts';

// Real `conntrack -L` lines (conntrack-tools 1.4.7), default and extended formats.
const LISTING = [
  'udp      17 29 src=10.244.1.13 dst=10.96.0.53 sport=45000 dport=53 src=10.244.1.11 dst=10.244.1.13 sport=5353 dport=45000 [ASSURED] mark=0 use=1',
  'udp      17 99 src=10.0.0.2 dst=10.96.0.53 sport=1001 dport=53 [UNREPLIED] src=10.96.0.53 dst=10.0.0.2 sport=53 dport=1001 mark=0 use=1',
  'ipv6     10 udp      17 99 src=fd00::1 dst=fd00:10:96::a sport=1001 dport=53 [UNREPLIED] src=fd00:10:244:1::b dst=fd00::1 sport=5353 dport=1001 mark=0 use=1',
  'tcp      6 431999 ESTABLISHED src=10.244.1.13 dst=10.96.0.10 sport=40000 dport=80 src=10.244.2.11 dst=10.244.1.13 sport=8080 dport=40000 [ASSURED] mark=0 use=1',
  'icmp     1 29 src=10.244.1.13 dst=10.96.0.10 type=8 code=0 id=7 src=10.96.0.10 dst=10.244.1.13 type=0 code=0 id=7 mark=0 use=1',
  'conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.',
  '',
].join('\n');

test('parses original and reply tuples of each flow, skipping non-port protocols and summaries', () => {
  const entries = parseConntrackList(LISTING);
  assert.deepEqual(entries, [
    {
      family: 'IPv4',
      protocol: 'udp',
      original: { src: '10.244.1.13', dst: '10.96.0.53', sport: 45000, dport: 53 },
      reply: { src: '10.244.1.11', dst: '10.244.1.13', sport: 5353, dport: 45000 },
    },
    {
      family: 'IPv4',
      protocol: 'udp',
      original: { src: '10.0.0.2', dst: '10.96.0.53', sport: 1001, dport: 53 },
      reply: { src: '10.96.0.53', dst: '10.0.0.2', sport: 53, dport: 1001 },
    },
    {
      family: 'IPv6',
      protocol: 'udp',
      original: { src: 'fd00::1', dst: 'fd00:10:96::a', sport: 1001, dport: 53 },
      reply: { src: 'fd00:10:244:1::b', dst: 'fd00::1', sport: 5353, dport: 1001 },
    },
    {
      family: 'IPv4',
      protocol: 'tcp',
      original: { src: '10.244.1.13', dst: '10.96.0.10', sport: 40000, dport: 80 },
      reply: { src: '10.244.2.11', dst: '10.244.1.13', sport: 8080, dport: 40000 },
    },
  ]);
});

test('IPv6 addresses come out canonical, so they compare equal to snapshot addresses', () => {
  const entry = parseConntrackLine(
    'udp 17 30 src=FD00:0:0::1 dst=fd00:10:96:0:0:0:0:a sport=1 dport=53 src=fd00:10:244:1:0::b dst=fd00::1 sport=5353 dport=1',
  );
  assert.equal(entry?.original.src, 'fd00::1');
  assert.equal(entry.original.dst, 'fd00:10:96::a');
  assert.equal(entry.reply.src, 'fd00:10:244:1::b');
});

test('malformed lines are skipped, never half-parsed', () => {
  for (const line of [
    'udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2',
    'udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1',
    'udp 17 30 src=10.0.0.1 dst=bogus sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1',
    'udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=70000 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1',
    'udp 17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=fd00::2 dst=fd00::1 sport=2 dport=1',
    'gre 47 30 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x0',
    'garbage',
  ]) {
    assert.equal(parseConntrackLine(line), undefined, line);
  }
});
