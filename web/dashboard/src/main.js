// Browser entry point.

import './style.css';
import { createApp } from './app.js';
import { uplotFactory } from './ui/uplot-chart.js';

function sessionStore() {
  try { return window.sessionStorage; } catch { return null; }
}

const app = createApp(document.getElementById('app'), {
  fetch: (...args) => window.fetch(...args),
  storage: sessionStore(),
  chartFactory: uplotFactory,
  location: window.location,
  history: window.history,
});
app.start();
