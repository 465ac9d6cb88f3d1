import type * as grpc from '@grpc/grpc-js';

/**
 * Channel credentials of the xDS stream, asked for at every (re)connect: with
 * mTLS xDS (`weft proxy --xds-tls`) they hold the current SVID, so a renewed
 * certificate is used by the next stream. Process-wide because the CLI sets it
 * before the proxy (and its lazily loaded ADS client) exists.
 */
let channelCredentials: (() => grpc.ChannelCredentials) | undefined;

export function setXdsChannelCredentials(fn: (() => grpc.ChannelCredentials) | undefined): void {
  channelCredentials = fn;
}

/** The credentials set above (the telemetry stream dials the same server with them). */
export function xdsChannelCredentials(): (() => grpc.ChannelCredentials) | undefined {
  return channelCredentials;
}
