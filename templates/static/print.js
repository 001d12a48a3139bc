// Receipt: reveal the "Print / Save as PDF" button and print on click (CSP forbids inline handlers).
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
