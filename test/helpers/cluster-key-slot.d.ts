// cluster-key-slot (installed with ioredis, which routes cluster commands by it) ships no types.
declare module 'cluster-key-slot' {
  /** Redis Cluster's hash slot (0 to 16383) of a key, hash tags honoured. */
  export default function calculateSlot (key: string | Buffer): number
}
