export const FIXTURES = [
  { eventName: 'Arsenal vs Chelsea', venue: 'Emirates Stadium, London' },
  { eventName: 'Liverpool vs Manchester United', venue: 'Anfield, Liverpool' },
  { eventName: 'Manchester City vs Tottenham Hotspur', venue: 'Etihad Stadium, Manchester' },
  { eventName: 'Newcastle United vs Aston Villa', venue: "St James' Park, Newcastle" },
  { eventName: 'Real Madrid vs FC Barcelona', venue: 'Santiago Bernabéu, Madrid' },
  { eventName: 'Bayern Munich vs Borussia Dortmund', venue: 'Allianz Arena, Munich' },
  { eventName: 'Celtic vs Rangers', venue: 'Celtic Park, Glasgow' },
  { eventName: 'England vs Scotland (Six Nations)', venue: 'Twickenham Stadium, London' },
  { eventName: 'Wimbledon Centre Court, Day 9', venue: 'All England Club, London' },
  { eventName: 'FA Cup Final', venue: 'Wembley Stadium, London' },
] as const;

export const DEMO_PLATFORMS = ['ticketmaster', 'stubhub', 'seatgeek', 'viagogo', 'livenation', 'axs'] as const;
