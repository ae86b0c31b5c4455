// Ids minted by this server are UUIDs; anything else cannot name one of its rows, and is
// answered as not found before it reaches a uuid column (where PostgreSQL would reject it).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
