import http from 'node:http';

/** The body of GET http://127.0.0.1:PORT/ (tests only ever talk to the loopback). */
export function httpGet(port: number, timeout = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}
