import { FlightClient } from './flight_client.mjs';
const c = new FlightClient(process.argv[2]);
console.log((await c.doAction('stats'))[0].toString());
c.close();
