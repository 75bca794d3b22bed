import { auditPage } from './audit.js';
import { failuresPage } from './failures.js';
import { overviewPage } from './overview.js';
import { projectionsPage } from './projections.js';
import { tailPage } from './tail.js';

// One page shown at a time (#overview, #projections, …); a hidden page stops its timers and streams.
const factories = { overview: overviewPage, projections: projectionsPage, failures: failuresPage, audit: auditPage, tail: tailPage };
const pages = {};
let current = null;

function route() {
  const name = location.hash.replace(/^#/, '').split('?')[0] || 'overview';
  const target = factories[name] ? name : 'overview';
  if (target === current) return;
  if (current) {
    pages[current].hide();
    document.getElementById(`page-${current}`).hidden = true;
  }
  const section = document.getElementById(`page-${target}`);
  pages[target] ??= factories[target](section);
  section.hidden = false;
  for (const a of document.querySelectorAll('nav a[data-page]')) a.classList.toggle('active', a.dataset.page === target);
  current = target;
  pages[target].show();
}

window.addEventListener('hashchange', route);
route();
