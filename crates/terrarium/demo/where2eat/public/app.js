// Asks the app's function for a pick and shows it. The address is relative (api/pick),
// so the page works both at /apps/demo/where2eat/ and at where2eat.demo.<domain>.
const form = document.getElementById("pick");
const result = document.getElementById("result");

function show(lines, className) {
  result.replaceChildren(
    ...lines.map(([text, lineClass]) => {
      const line = document.createElement("p");
      line.textContent = text;
      line.className = lineClass || className || "";
      return line;
    }),
  );
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const cuisine = document.getElementById("cuisine").value;
  show([["Picking…"]]);
  try {
    const response = await fetch(`api/pick?cuisine=${encodeURIComponent(cuisine)}`);
    const body = await response.json();
    if (!response.ok) {
      show([[body.error || `The function answered ${response.status}.`], [body.hint || ""]], "error");
      return;
    }
    const place = body.place;
    show([
      [place.name, "place"],
      [`${place.cuisine} in ${place.area}, ${body.city} · ${place.price}`],
      [`Picked out of ${body.outOf} place${body.outOf === 1 ? "" : "s"}.`],
    ]);
  } catch (error) {
    show([[`Could not reach the function: ${error}`]], "error");
  }
});
