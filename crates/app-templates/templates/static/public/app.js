// The page's behaviour: this code runs in the visitor's browser.
document.getElementById("hello").addEventListener("click", () => {
  const time = new Date().toLocaleTimeString();
  document.getElementById("message").textContent = `Hello! It is ${time}.`;
});
