// The page's behaviour: this code runs in the visitor's browser.
// It calls the app's function at api/hello (a relative address, so it works at any URL).
const form = document.getElementById("greet");
const answer = document.getElementById("answer");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("name").value.trim();
  answer.textContent = "Asking…";
  try {
    const response = await fetch(`api/hello?name=${encodeURIComponent(name)}`);
    const body = await response.json();
    answer.textContent = response.ok ? body.message : `The function answered ${response.status}: ${body.error || ""}`;
  } catch (error) {
    answer.textContent = `Could not reach the function: ${error}`;
  }
});
