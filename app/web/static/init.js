// The pages' one script: GOV.UK Frontend's and MOJ Frontend's components, from /assets
// (node_modules, installed by `make assets`). An external module, so a strict
// Content-Security-Policy (script-src 'self') applies; the body classes the GOV.UK
// template's inline snippet would set are set here too, so the pages need no inline script.
import { initAll as initGovuk } from '/assets/govuk-frontend.min.js'
import { initAll as initMoj } from '/assets/moj-frontend.min.js'

document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initGovuk()
initMoj()
