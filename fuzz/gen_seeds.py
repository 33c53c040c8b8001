"""Writes the seed corpora in fuzz/seeds/ (run from anywhere)."""
import os
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'seeds'))
bep5 = {
 'ping_query': b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
 'ping_response': b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
 'find_node_query': b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
 'find_node_response': b"d1:rd2:id20:0123456789abcdefghij5:nodes26:mnopqrstuvwxyz123456\x7f\x00\x00\x02\x1a\xe1e1:t2:aa1:y1:re",
 'get_peers_query': b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
 'get_peers_response_values': b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
 'announce_peer_query': b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
 'error': b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
 'response_ip_v': b"d2:ip6:\x7f\x00\x00\x09\x0f\xa01:rd2:id20:mnopqrstuvwxyz123456e1:t4:\x00\x01\x02\x031:v4:TL\x00\x011:y1:re",
}
hostile = {
 'hostile_deep_nesting': b"l" * 64,
 'hostile_huge_length': b"d1:t99999999999999999999:aa1:y1:qe",
 'hostile_noncanonical_port': b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti03e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
 'hostile_id_as_integer': b"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe",
 'hostile_t_as_list': b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:tli97ei97ee1:y1:qe",
 'hostile_trailing': b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qex",
 'hostile_truncated': b"d1:ad2:id20:abcdefghij0123456789e1:q4:pi",
}
def write(target, name, data):
    os.makedirs(target, exist_ok=True)
    open(os.path.join(target, name), 'wb').write(data)

for name, data in {**bep5, **hostile}.items():
    write('krpc_decode', name, data)
for name, data in {'ping_query': bep5['ping_query'], 'get_peers_response_values': bep5['get_peers_response_values'], 'error': bep5['error'], **{k: hostile[k] for k in ['hostile_deep_nesting', 'hostile_huge_length', 'hostile_noncanonical_port', 'hostile_trailing']}}.items():
    write('bencode_validate', name, data)
write('bencode_validate', 'torrent_info', b"d8:announce3:url4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:01234567890123456789e5:otheri1ee")
write('bencode_validate', 'info_first', b"d4:infol4:spami-42ee1:zdee")

# dht_node scripts (see the format in fuzz_targets/dht_node.rs).
def raw(src, data):
    assert len(data) < 256
    return bytes([(src << 4) | 0, len(data)]) + data
def advance(b): return bytes([2, b])
def command(which, a, b): return bytes([3, which, a, b])
def answer(pick, flags, a, b, nodes=(), values=(), token=b''):
    out = bytes([4, pick, flags, a, b, len(nodes)])
    for (na, nb, addr) in nodes:
        out += bytes([na, nb, addr])
    out += bytes([len(values)]) + bytes(values)
    if flags & 0x10: out += token.ljust(8, b'\0')
    return out
def query(src, which, a, b): return bytes([6, src, which, a, b])

write('dht_node', 'bep5_packets', b''.join(raw(i % 5, d) for i, d in enumerate(bep5.values()) if len(d) < 256))
write('dht_node', 'hostile_packets', b''.join(raw(i % 6, d) for i, d in enumerate(hostile.values())) + raw(0, bep5['ping_query']))
write('dht_node', 'ping_and_answer', command(0, 0x01, 0) + answer(0, 0, 0x81, 3, nodes=[(0x82, 5, 0x41), (0x83, 9, 0x42)]) + advance(0) + query(1, 1, 0x81, 4))
write('dht_node', 'bootstrap_and_lookup',
      command(4, 3, 0) + answer(0, 0, 0x81, 1, nodes=[(0x81, 2, 0x41), (0x81, 3, 0x42), (0x81, 4, 0x43)])
      + answer(0, 0, 0x81, 5, nodes=[(0x81, 6, 0x44)]) + answer(0, 0, 0x81, 7)
      + advance(8) + advance(30) + command(2, 0x10, 0x20)
      + answer(0, 0x10, 0x81, 2, values=[1, 2, 3], token=b'tok') + advance(30))
write('dht_node', 'announce_flow',
      query(0, 2, 1, 2) + query(0, 3, 1, 2) + query(2, 2, 1, 2) + query(1, 0x43, 1, 2) + query(1, 0x23, 1, 2) + query(4, 4, 1, 2)
      + advance(200) + advance(200) + query(0, 3, 1, 2))
write('dht_node', 'announce_command',
      command(0, 0x41, 0) + answer(0, 0, 0x81, 9) + command(3 | 0x40, 0x11, 0x22)
      + answer(0, 0x10, 0x81, 9, token=b'zz') + answer(0, 0, 0x81, 9) + advance(60) + advance(255))
