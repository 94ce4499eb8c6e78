// Placeholder until the console lands: proves the build, the bundle and the CSP.
import jsQR from 'jsqr';

const app = document.getElementById('app');
app.textContent = typeof jsQR === 'function' ? 'devid console' : 'devid console (no decoder)';
