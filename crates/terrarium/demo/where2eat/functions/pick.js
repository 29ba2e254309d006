// GET /api/pick picks a random lunch place; ?cuisine=thai keeps only places of that cuisine.
// The list lives here, in the function module, so the demo needs no database.

const PLACES = [
  { name: "Taberna da Rua", cuisine: "Portuguese", area: "Alfama", price: "€€" },
  { name: "O Prego", cuisine: "Portuguese", area: "Baixa", price: "€" },
  { name: "Bacalhau & Co", cuisine: "Portuguese", area: "Chiado", price: "€€€" },
  { name: "Trattoria Sole", cuisine: "Italian", area: "Príncipe Real", price: "€€" },
  { name: "Pizza Forno", cuisine: "Italian", area: "Cais do Sodré", price: "€" },
  { name: "Sakura Bento", cuisine: "Japanese", area: "Avenidas Novas", price: "€€" },
  { name: "Ramen Kaze", cuisine: "Japanese", area: "Arroios", price: "€" },
  { name: "Bangkok Street", cuisine: "Thai", area: "Intendente", price: "€" },
  { name: "Masala House", cuisine: "Indian", area: "Martim Moniz", price: "€" },
  { name: "Taco Loco", cuisine: "Mexican", area: "Santos", price: "€€" },
  { name: "Green Bowl", cuisine: "Vegetarian", area: "Campo de Ourique", price: "€€" },
];

function cuisines() {
  return [...new Set(PLACES.map((place) => place.cuisine))].sort();
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const wanted = (url.searchParams.get("cuisine") || "").trim();
    const candidates = wanted
      ? PLACES.filter((place) => place.cuisine.toLowerCase() === wanted.toLowerCase())
      : PLACES;

    if (candidates.length === 0) {
      console.warn(`no place for cuisine ${JSON.stringify(wanted)}`);
      return Response.json(
        {
          error: `No place serves "${wanted}" food.`,
          hint: `Try one of: ${cuisines().join(", ")}, or leave the cuisine out.`,
          cuisines: cuisines(),
        },
        { status: 404 },
      );
    }

    const place = candidates[Math.floor(Math.random() * candidates.length)];
    console.log(`picked ${place.name} out of ${candidates.length}`);
    return Response.json({
      place,
      city: env.CITY || "Lisbon",
      outOf: candidates.length,
      cuisines: cuisines(),
    });
  },
};
