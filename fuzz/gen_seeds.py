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

# ---------------------------------------------------------------------------
# Peer wire, BEP 10/9 extension messages, magnet links, metainfo, and the
# peer_session / metadata_assembler scripts.
import hashlib
import struct


def bencode(value):
    if isinstance(value, int):
        return b'i%de' % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b'%d:%s' % (len(value), value)
    if isinstance(value, list):
        return b'l' + b''.join(bencode(v) for v in value) + b'e'
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b'd' + b''.join(bencode(k) + bencode(v) for k, v in items) + b'e'
    raise TypeError(value)


def handshake(info_hash, peer_id, ext=True, dht=True):
    reserved = bytearray(8)
    if ext: reserved[5] |= 0x10
    if dht: reserved[7] |= 0x01
    return b'\x13BitTorrent protocol' + bytes(reserved) + info_hash + peer_id


def frame(msg_id=None, payload=b''):
    if msg_id is None:
        return b'\0\0\0\0'
    return struct.pack('>I', len(payload) + 1) + bytes([msg_id]) + payload


def extended(ext_id, payload):
    return frame(20, bytes([ext_id]) + payload)


# A real extended handshake, as libtorrent 2.0 sends it.
LT_EXT_HANDSHAKE = (b'd12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e'
                    b'12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e'
                    b'1:pi6881e4:reqqi500e11:upload_onlyi1e1:v17:libtorrent/2.0.9'
                    b'6:yourip4:\xc0\x00\x02\x07e')
BEP10_EXAMPLE = b'd1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v13:uTorrent 1.2.e'
def ut_metadata(msg_type, piece, total_size=None, data=b''):
    header = {'msg_type': msg_type, 'piece': piece}
    if total_size is not None: header['total_size'] = total_size
    return bencode(header) + data

HASH = bytes([0x11] * 20)
# peer_wire: a handshake then frames, frames alone, and hostile prefixes.
all_frames = (frame() + frame(0) + frame(1) + frame(2) + frame(3) + frame(4, struct.pack('>I', 7))
              + frame(5, b'\xff\x80') + frame(6, struct.pack('>III', 1, 16384, 16384))
              + frame(7, struct.pack('>II', 1, 0) + b'block') + frame(8, struct.pack('>III', 1, 16384, 16384))
              + frame(9, struct.pack('>H', 6881)) + frame(14) + extended(0, LT_EXT_HANDSHAKE))
write('peer_wire', 'handshake_then_frames', handshake(HASH, b'-TL0001-abcdefghijkl') + all_frames)
write('peer_wire', 'frames', all_frames)
write('peer_wire', 'ut_metadata_data_frame',
      extended(2, ut_metadata(1, 0, 100, b'd1:ai1ee' + bytes(92))) + frame(2))
write('peer_wire', 'hostile_oversize_prefix', b'\xff\xff\xff\xff\x07')
write('peer_wire', 'hostile_bad_lengths', frame(0, b'\0') + frame(4, b'\0\0\1'))
write('peer_wire', 'hostile_truncated_piece', frame(7, struct.pack('>II', 1, 0) + b'x' * 50)[:30])
write('peer_wire', 'not_bittorrent', b'GET / HTTP/1.1\r\nHost: example\r\n\r\n')

# extension: byte 0 picks metadata_size (0: none; 2: the next 2 bytes;
# 5: the next 3 bytes), the rest is the payload.
write('extension', 'libtorrent_handshake', b'\x00' + LT_EXT_HANDSHAKE)
write('extension', 'bep10_example', b'\x00' + BEP10_EXAMPLE)
write('extension', 'data_with_trailing_bytes',
      b'\x02' + struct.pack('>H', 3425) + ut_metadata(1, 0, 3425, b'x' * 3425))
write('extension', 'data_last_piece',
      b'\x05' + (16384 + 100).to_bytes(3, 'big') + ut_metadata(1, 1, 16384 + 100, b'd1:ai1ee' + bytes(92)))
write('extension', 'request_known_size', b'\x02' + struct.pack('>H', 40000) + ut_metadata(0, 2))
write('extension', 'reject', b'\x00' + ut_metadata(2, 0))
write('extension', 'hostile_unknown_msg_type', b'\x00' + ut_metadata(7, 0))
write('extension', 'hostile_negative_size', b'\x00d13:metadata_sizei-5ee')

# magnet: a whole link, or byte 0 (even) then what follows
# `magnet:?xt=urn:btih:<hash>&`, or byte 0 (odd) then an x.pe address.
HEX = 'c12fe1c06bba254a9dc9f519b335aa7c1367a88a'
BTMH = '1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e'
write('magnet', 'all_parameters', (
    f'magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny%2B&tr=udp%3A%2F%2Ftracker.example%3A1337'
    f'&tr=http://t.example/announce?a=1+2&x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:51413'
    f'&x.pe=peer.example.org:6881&so=0,2,4-6&so=9&tr.1=udp://other:1&unknown=1&&ws=http://x').encode())
write('magnet', 'hybrid_v2', f'magnet:?xt=urn:btmh:{BTMH}&xt=urn:btih:{HEX}&dn=hybrid'.encode())
write('magnet', 'base32_numbered', b'  MAGNET:?xt.1=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=%E2%9C%93\n')
write('magnet', 'shortcut_params', b'\x00dn=x&tr=udp://a:1&so=1,3-5&x.pe=[::1]:80')
write('magnet', 'shortcut_peer', b'\x01peer.example.org:6881')
write('magnet', 'hostile_v2_only', f'magnet:?xt=urn:btmh:{BTMH}'.encode())

# metainfo: torrents as Info::single_file / Metainfo::new write them
# (canonical, keys sorted), one with outer keys, one with its info keys out
# of order and unknown keys (its hash is over those bytes), a hybrid, and an
# info dictionary alone.
def pieces_of(content, piece_length):
    return b''.join(hashlib.sha1(content[i:i + piece_length]).digest()
                    for i in range(0, len(content), piece_length))

single_content = bytes(i * 7 % 251 for i in range(40000))
single_info = {'length': len(single_content), 'name': 'hello.txt', 'piece length': 16384,
               'pieces': pieces_of(single_content, 16384)}
multi_files = [(['cd1', 'track 1.flac'], 20000, False), (['.pad', '12768'], 12768, True),
               (['cover.jpg'], 5000, False)]
multi_content = bytes(37768)
multi_info = {'files': [dict({'length': n, 'path': p}, **({'attr': 'p'} if pad else {}))
                        for p, n, pad in multi_files],
              'name': 'album', 'piece length': 16384, 'pieces': pieces_of(multi_content, 16384),
              'private': 1}
write('metainfo', 'single_file', b'd4:info' + bencode(single_info) + b'e')
write('metainfo', 'multi_file', b'd4:info' + bencode(multi_info) + b'e')
write('metainfo', 'info_alone', bencode(single_info))
write('metainfo', 'outer_keys', bencode({
    'announce': 'udp://tracker.example:1337', 'announce-list': [['udp://a:1', 'udp://b:2'], ['http://c/announce']],
    'comment': 'fuzz seed', 'created by': 'trackerless', 'creation date': 1700000000,
    'info': multi_info, 'nodes': [['router.example', 6881], ['192.0.2.1', 6881]]}))
tiny = {'length': 5, 'name': 'a', 'piece length': 16384, 'pieces': hashlib.sha1(b'hello').digest()}
write('metainfo', 'noncanonical_info', b'd7:comment2:hi4:infod4:name1:a6:lengthi5e12:piece lengthi16384e'
      b'1:xi1e6:pieces20:' + tiny['pieces'] + b'ee')
write('metainfo', 'hybrid', b'd4:info' + bencode(dict(tiny, **{
    'meta version': 2, 'file tree': {'a': {'': {'length': 5, 'pieces root': bytes(32)}}}})) + b'e')
write('metainfo', 'hostile_v2_only', b'd4:info' + bencode({
    'meta version': 2, 'name': 'a', 'piece length': 16384,
    'file tree': {'a': {'': {'length': 5, 'pieces root': bytes(32)}}}}) + b'e')
write('metainfo', 'hostile_dotdot', b'd4:info' + bencode(dict(multi_info, files=[{'length': 37768, 'path': ['..', 'x']}])) + b'e')

# peer_session scripts (format at the top of fuzz_targets/peer_session.rs).
# Byte 0: bit 0 makes A (outgoing) serve the metadata. Ops: low 4 bits,
# bit 4 picks B instead of A.
A, B = 0x00, 0x10
def s_pipe(frm, amount=0): return bytes([frm | 3, amount])
def s_request(side, piece): return bytes([side | 4, piece])
def s_accept(side, which): return bytes([side | 5, which])
def s_peer(side, how, body, cut=0): return bytes([side | 2 | (how << 5)]) + body + bytes([cut])
def s_raw(side, data): return bytes([side | 0, len(data)]) + data
pipe_all = s_pipe(A) + s_pipe(B)
write('peer_session', 'fetch_from_b', b'\x00' + s_pipe(A) + s_accept(B, 1) + s_pipe(B) + s_pipe(A)
      + s_request(A, 0) + s_request(A, 1) + s_request(A, 2) + s_pipe(A) + s_pipe(B, 100) + s_pipe(B))
write('peer_session', 'b_fetches_from_a', b'\x01' + s_pipe(A) + s_accept(B, 0) + s_pipe(B) + s_pipe(A)
      + s_request(B, 0) + s_request(B, 2) + s_pipe(B) + s_pipe(A) + bytes([B | 6, 5, 0, 0, 0, 9]) + s_pipe(B))
write('peer_session', 'scripted_peer_of_a', b'\x00'
      + s_peer(A, 0, b'\x00') + s_peer(A, 1, b'\x01\x01\x00', 0) + s_request(A, 0)
      + s_peer(A, 2, b'\x03\x00\x00\x00', 40) + s_peer(A, 0, b'\x04\x01') + s_peer(A, 0, b'\x06\x05\x01\x02\x03\x04')
      + s_peer(A, 0, b'\x02\x01') + s_peer(A, 0, b'\x05') + s_peer(A, 0, b'\x07\x05\x03abc') + bytes([A | 7]))
write('peer_session', 'scripted_peer_of_b', b'\x00'
      + s_peer(B, 0, b'\x00') + s_peer(B, 0, b'\x01\x01\x00') + s_accept(B, 2)
      + s_peer(B, 0, b'\x02\x00') + s_peer(B, 0, b'\x02\x02') + s_peer(B, 0, b'\x38\x01\x03\x05\x00\x00\x00\x07\x0b') + s_request(B, 1))
write('peer_session', 'pipelined_before_accept', b'\x00'
      + s_raw(B, handshake(HASH, b'-XX0001-pipelined...') + extended(0, BEP10_EXAMPLE) + frame(2))
      + s_accept(B, 1) + s_pipe(B) + s_raw(B, b''))
# B's peer pipelines its extended handshake (ut_metadata) and a request:
# accept answers the request at once, and B can request right away.
write('peer_session', 'pipelined_request_served_on_accept', b'\x00'
      + s_raw(B, handshake(HASH, b'-XX0001-pipelined...')
              + extended(0, bencode({'m': {'ut_metadata': 3}, 'metadata_size': 2 * 16384 + 300, 'v': 'x'}))
              + extended(1, ut_metadata(0, 0)))
      + s_accept(B, 1) + s_request(B, 1) + s_pipe(B) + s_pipe(A))
# Op 9: a piece message (size byte 0xff: 1 MiB; 0xf0: 64 KiB; below, up to
# 3.75 KiB). Before accept, B holds one of 1 MiB (up to
# AWAITING_ACCEPT_BUFFER_MAX); the second is refused. One alone, split in
# two, is processed by accept.
def s_big(side, size, split=False, cut=0): return bytes([side | 9 | (0x40 if split else 0), size, cut])
write('peer_session', 'flood_before_accept', b'\x00' + s_peer(B, 0, b'\x00') + s_big(B, 0xff) + s_big(B, 0xff))
write('peer_session', 'big_frame_processed_on_accept', b'\x00' + s_peer(B, 0, b'\x00') + s_big(B, 0xf0, True, 100)
      + s_accept(B, 0) + s_pipe(B) + s_big(A, 3))
write('peer_session', 'hostile_wrong_hash', b'\x00' + s_peer(A, 0, b'\x10') + s_raw(B, b'GET / HTTP/1.1\r\n\r\n'))
write('peer_session', 'hostile_extended_before_handshake', b'\x00' + s_peer(A, 0, b'\x00') + s_peer(A, 0, b'\x02\x00'))
write('peer_session', 'burst_oversize', b'\x00' + bytes([8, 0x02, 0]))
write('peer_session', 'burst_megabyte_piece', b'\x00' + bytes([8, 0x06, 63]))
write('peer_session', 'burst_incoming_bitfield', b'\x00' + bytes([8, 0x11, 15]) + pipe_all)
# Burst mode bit 6: the frame reaches an incoming session before accept;
# bit 7: accept right after an oversize prefix.
write('peer_session', 'burst_before_accept_megabyte', b'\x00' + bytes([8, 0x47, 63]))
write('peer_session', 'burst_before_accept_oversize', b'\x00' + bytes([8, 0x43, 255]))
write('peer_session', 'burst_before_accept_oversize_then_accept', b'\x00' + bytes([8, 0xc5, 0]))

# metadata_assembler scripts (format at the top of
# fuzz_targets/metadata_assembler.rs). Byte 0: metadata size (index into
# [1, 100, 16384, 16385, 32845, 65536], low 4 bits) and requests_per_peer_max
# (1 + high 4 bits % 3).
def m_add(peer, choice=0): return bytes([peer << 3 | 0, choice])
def m_next(peer): return bytes([peer << 3 | 1])
def m_piece(peer, pick, data): return bytes([peer << 3 | 2, pick, data])
def m_reject(peer, pick): return bytes([peer << 3 | 3, pick])
def m_remove(peer): return bytes([peer << 3 | 4])
def m_advance(n): return bytes([5, n])
def m_refill_answer(peer): return bytes([peer << 3 | 6])
def m_answer_all(peer, data): return bytes([peer << 3 | 7, data])
write('metadata_assembler', 'honest_peers', b'\x14' + m_add(0) + m_add(1) + m_next(0) + m_next(1)
      + m_answer_all(1, 0) + m_refill_answer(0) + m_refill_answer(1) + m_refill_answer(0))
write('metadata_assembler', 'liar_alone_then_honest', b'\x04' + m_add(0) + m_next(0) + m_answer_all(0, 4)
      + m_next(0) + m_answer_all(0, 4) + m_next(0) + m_answer_all(0, 4) + m_add(0) + m_add(1)
      + m_refill_answer(1) + m_refill_answer(1) + m_refill_answer(1))
write('metadata_assembler', 'mixed_failure_single_source', b'\x04' + m_add(0) + m_add(1) + m_next(0) + m_next(1)
      + m_answer_all(0, 0) + m_answer_all(1, 4) + m_next(1) + m_answer_all(1, 0) + m_next(1) + m_answer_all(1, 0)
      + m_refill_answer(0) + m_refill_answer(1) + m_refill_answer(0))
write('metadata_assembler', 'wrong_size_then_right', b'\x03' + m_add(0, 8) + m_add(1) + m_add(2) + m_next(0)
      + m_answer_all(0, 0) + m_next(0) + m_answer_all(0, 0) + m_refill_answer(1) + m_refill_answer(2) + m_refill_answer(1) + m_refill_answer(1))
write('metadata_assembler', 'timeouts_rejects_removals', b'\x15' + m_add(0) + m_add(1) + m_next(0) + m_next(1)
      + m_reject(1, 0) + m_advance(70) + m_next(1) + m_remove(0) + m_next(1) + m_piece(1, 0, 5) + m_piece(0, 0x81, 0)
      + m_add(2, 6) + m_add(3, 11) + m_add(3, 12) + m_refill_answer(1) + m_refill_answer(1))
# Peer 0 holds pieces 0-2; piece 2 times out and peer 1 sends it garbled:
# the check fails (two senders, nobody blamed), and peer 0's late answer to
# piece 2 is stale: ignored once, then unexpected.
write('metadata_assembler', 'late_answer_after_restart', b'\x24' + m_add(0) + m_add(1) + m_next(0)
      + m_piece(0, 0, 0) + m_piece(0, 0, 0) + m_advance(60) + m_next(1) + m_piece(1, 0, 4)
      + m_piece(0, 0, 0) + m_piece(0, 0x82, 0) + m_refill_answer(0) + m_refill_answer(1) + m_refill_answer(0))
write('metadata_assembler', 'readd_with_requests', b'\x05' + m_add(0) + m_next(0) + m_add(0) + m_next(0) + m_refill_answer(0))
