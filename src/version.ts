/** The version `stated --version` prints and the daemon logs at start. */
export const VERSION = '0.1.0';
