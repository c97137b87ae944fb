// A "Copy" button for text the page shows once (a new API key): a button with
// data-copy="ID" copies the text of the element with that id. The button is hidden until
// this script runs, so a browser without it shows only the select-and-copy hint.
"use strict";

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    const status = document.getElementById(button.dataset.copyStatus || "");
    if (!source || !navigator.clipboard) {
      continue;
    }
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        if (status) {
          status.textContent = "Copied. Keep it somewhere safe: it will not be shown again.";
        }
      } catch (error) {
        if (status) {
          status.textContent = "Could not copy: select the key and copy it by hand.";
        }
      }
    });
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", setUpCopyButtons);
} else {
  setUpCopyButtons();
}
