// @peculiar/x509 needs the Reflect metadata API when it loads: install the
// polyfill first. Import x509 from here, never from '@peculiar/x509' directly.
import 'reflect-metadata';
export * as x509 from '@peculiar/x509';
