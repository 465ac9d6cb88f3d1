import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../../lib/errors.js';
import { bearerToken, createAuthorizer, isLoopback } from './auth.js';

const authorize = createAuthorizer('s3cret-token');
const remote = '10.1.2.3';

test('loopback addresses, IPv4, IPv6 and IPv4-mapped', () => {
  for (const a of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.3.2.1']) assert.equal(isLoopback(a), true, a);
  for (const a of [undefined, '', '10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', '::ffff:7f00:1x', 'fe80::1%lo0', 'localhost', '1.127.0.0']) assert.equal(isLoopback(a), false, String(a));
});

test('writes need the token: 401 without, 403 wrong, ok right', () => {
  for (const method of ['POST', 'PUT', 'DELETE']) {
    for (const remoteAddress of ['127.0.0.1', remote]) {
      assert.throws(() => authorize({ method, authorization: undefined, remoteAddress }), (e) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED'));
      assert.throws(() => authorize({ method, authorization: 'Bearer nope', remoteAddress }), (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN'));
      assert.throws(() => authorize({ method, authorization: 'Bearer s3cret-token-and-more', remoteAddress }), (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN'));
      authorize({ method, authorization: 'Bearer s3cret-token', remoteAddress });
    }
  }
});

test('reads: loopback without a token, elsewhere only with it', () => {
  authorize({ method: 'GET', authorization: undefined, remoteAddress: '127.0.0.1' });
  authorize({ method: 'GET', authorization: undefined, remoteAddress: '::ffff:127.0.0.1' });
  authorize({ method: 'HEAD', authorization: undefined, remoteAddress: '::1' });
  assert.throws(() => authorize({ method: 'GET', authorization: undefined, remoteAddress: remote }), (e) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED'));
  assert.throws(() => authorize({ method: 'GET', authorization: undefined, remoteAddress: undefined }), (e) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED'));
  authorize({ method: 'GET', authorization: 'bearer s3cret-token', remoteAddress: remote });
  // a token sent is checked even where none is needed
  assert.throws(() => authorize({ method: 'GET', authorization: 'Bearer wrong', remoteAddress: '127.0.0.1' }), (e) => isWeftError(e, 'WEFT_ERR_FORBIDDEN'));
});

test('only the Bearer scheme is understood', () => {
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken('Bearer abc'), 'abc');
  for (const h of ['Basic YWJjOmRlZg==', 'Bearer', 'Bearer ', 'Bearer a b', 'abc']) {
    assert.throws(() => bearerToken(h), (e) => isWeftError(e, 'WEFT_ERR_UNAUTHORIZED'), h);
  }
});

test('an empty admin token is refused at construction', () => {
  assert.throws(() => createAuthorizer(''), (e) => isWeftError(e, 'WEFT_ERR_INTERNAL'));
});
