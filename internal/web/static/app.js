// tokend dashboard: small progressive enhancements. Pages work without it.
"use strict";
