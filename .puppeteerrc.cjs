// The tests drive Debian's Chromium (/usr/bin/chromium); puppeteer must not download a browser.
module.exports = { skipDownload: true };
